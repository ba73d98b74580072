"""Estate discovery against in-process moto CloudFormation stacks."""

from __future__ import annotations

import json

import boto3
import pytest

from evilent_nb.aws import get_session, usage
from evilent_nb.config import Config
from evilent_nb.estate import Estate, Service, discover, health_url, short_name
from evilent_nb.exceptions import ConfigError, UnknownServiceError

ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def service_template(prefix: str, *, functions: int = 1, api_url_slash: bool = False) -> str:
    """A stack like EVILENT's: a role, Lambda function(s), a REST API and an *ApiUrl output."""
    resources: dict = {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {"RoleName": f"{prefix}Role", "AssumeRolePolicyDocument": ROLE_POLICY},
        },
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": f"{prefix}Api"}},
    }
    for i in range(functions):
        suffix = "" if i == 0 else str(i + 1)
        resources[f"Fn{suffix}"] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": f"{prefix}Stack-Service{prefix}Function{suffix}",
                "Runtime": "nodejs18.x",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "exports.handler = async () => ({statusCode: 200});"},
            },
        }
    tail = "/" if api_url_slash else ""
    outputs = {
        f"{prefix}ApiUrl": {
            "Value": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/prod" + tail}
        },
        "Other": {"Value": "not-a-url"},
    }
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources, "Outputs": outputs})


NON_SERVICE = json.dumps(
    {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts-topic"}}},
    }
)


def create(session: boto3.Session, name: str, body: str) -> None:
    session.client("cloudformation").create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM"])


def api_id(session: boto3.Session, name: str) -> str:
    (item,) = [a for a in session.client("apigateway").get_rest_apis()["items"] if a["name"] == name]
    return item["id"]


@pytest.fixture
def seeded(moto_session):
    create(moto_session, "UserServiceStack", service_template("UserService", api_url_slash=True))
    create(moto_session, "ProductServiceStack", service_template("ProductService", functions=2))
    create(moto_session, "IamStack", NON_SERVICE)
    return moto_session


def test_discover_finds_services_exactly(seeded):
    estate = discover(config=Config(), boto3_session=seeded)
    region = "eu-central-1"
    assert estate.region == region
    assert estate.names == ["product", "user"]
    user = estate.service("user")
    uid = api_id(seeded, "UserServiceApi")
    assert user == Service(
        name="user",
        stack="UserServiceStack",
        status="CREATE_COMPLETE",
        functions=("UserServiceStack-ServiceUserServiceFunction",),
        apis=("UserServiceApi",),
        api_ids=(uid,),
        health_url=f"https://{uid}.execute-api.{region}.amazonaws.com/prod/health",
        log_groups=("/aws/lambda/UserServiceStack-ServiceUserServiceFunction",),
    )
    assert user.label == "UserService"
    product = estate.service("ProductServiceStack")
    assert sorted(product.functions) == [
        "ProductServiceStack-ServiceProductServiceFunction",
        "ProductServiceStack-ServiceProductServiceFunction2",
    ]
    assert sorted(product.log_groups) == sorted(f"/aws/lambda/{f}" for f in product.functions)
    assert product.apis == ("ProductServiceApi",)
    assert product.health_url.endswith("/prod/health")
    # from the config defaults
    assert estate.db_instances == ["evilent-user-service-db"]
    assert estate.backup_bucket == "evilent-backups"
    assert estate.backup_prefixes == ["user-service/", "product-service/"]
    # flattened views and ownership
    assert sorted(estate.functions) == sorted(user.functions + product.functions)
    assert sorted(estate.apis) == ["ProductServiceApi", "UserServiceApi"]
    assert len(estate.log_groups) == 3
    assert estate.service_of("UserServiceApi") == "user"
    assert estate.service_of(uid) == "user"
    assert estate.service_of("/aws/lambda/ProductServiceStack-ServiceProductServiceFunction2") == "product"
    assert estate.service_of("ProductServiceStack") == "product"
    assert estate.service_of("IamStack") is None
    assert estate.service_of(None) is None
    frame = estate.to_frame()
    assert frame.columns.tolist() == [
        "service", "label", "stack", "status", "functions", "apis", "api_ids", "health_url", "log_groups",
    ]
    assert frame.service.tolist() == ["product", "user"]
    assert frame.loc[1, "apis"] == ["UserServiceApi"]


def test_discover_call_count(seeded):
    counter = usage(seeded)
    counter.reset()
    discover(config=Config(), boto3_session=seeded)
    assert dict(counter.calls) == {
        "cloudformation.DescribeStacks": 1,
        "cloudformation.ListStackResources": 2,
        "apigateway.GetRestApis": 1,
    }


def test_service_lookup_is_case_insensitive_and_unknown_lists_names(seeded):
    estate = discover(config=Config(), boto3_session=seeded)
    assert estate.service("USER").stack == "UserServiceStack"
    assert estate.service("userservicestack").name == "user"
    with pytest.raises(UnknownServiceError) as info:
        estate.service("payments")
    message = str(info.value)
    assert message == "unknown service 'payments'; known services: product, user"
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_deleted_and_non_matching_stacks_are_not_services(seeded):
    seeded.client("cloudformation").delete_stack(StackName="ProductServiceStack")
    estate = discover(config=Config(), boto3_session=seeded)
    assert estate.names == ["user"]
    # the filter is the runbook's: "Iam" finds the IAM stack instead
    iam = discover(name_contains="Iam", config=Config(), boto3_session=seeded)
    assert iam.names == ["iam"]
    assert iam.service("iam") == Service(name="iam", stack="IamStack", status="CREATE_COMPLETE")


def test_other_name_in_other_region_needs_no_code_change(moto_session):
    west = get_session(region="us-west-2")
    create(west, "OrderServiceStack", service_template("OrderService"))
    # the eu-central-1 session sees nothing
    assert discover(config=Config(), boto3_session=moto_session).services == []
    estate = discover(config=Config(), boto3_session=west)
    assert estate.region == "us-west-2"
    assert estate.names == ["order"]
    order = estate.service("OrderServiceStack")
    oid = api_id(west, "OrderServiceApi")
    assert order.functions == ("OrderServiceStack-ServiceOrderServiceFunction",)
    assert order.apis == ("OrderServiceApi",)
    assert order.health_url == f"https://{oid}.execute-api.us-west-2.amazonaws.com/prod/health"


def test_config_overrides_and_excludes(seeded):
    config = Config(
        services={
            "user": {"health_url": "https://api.example.com/prod/", "functions": ["UserFn"]},
            "product": {"apis": "ProductApiRenamed", "log_groups": ["/custom/product"]},
            "ghost": {"health_url": "https://nowhere.example.com"},
        },
        db_instances=["db-a", "db-b"],
        backup_bucket="other-bucket",
        backup_prefixes=["x/"],
    )
    estate = discover(config=config, boto3_session=seeded)
    user = estate.service("user")
    assert user.health_url == "https://api.example.com/prod/health"
    assert user.functions == ("UserFn",)
    assert user.log_groups == ("/aws/lambda/UserFn",)
    assert user.apis == ("UserServiceApi",)
    product = estate.service("product")
    assert product.apis == ("ProductApiRenamed",)
    assert product.log_groups == ("/custom/product",)
    assert len(product.functions) == 2
    assert estate.names == ["product", "user"]  # "ghost" is not invented
    assert (estate.db_instances, estate.backup_bucket, estate.backup_prefixes) == (["db-a", "db-b"], "other-bucket", ["x/"])

    excluded = discover(config=Config(exclude_services=["Product"]), boto3_session=seeded)
    assert excluded.names == ["user"]
    by_stack = discover(config=Config(exclude_services=["UserServiceStack"]), boto3_session=seeded)
    assert by_stack.names == ["product"]


def test_bad_override_is_a_config_error(seeded):
    with pytest.raises(ConfigError, match="unknown key.*services.user.*colour"):
        discover(config=Config(services={"user": {"colour": "red"}}), boto3_session=seeded)
    with pytest.raises(ConfigError, match="services.user.functions"):
        discover(config=Config(services={"user": {"functions": [1, 2]}}), boto3_session=seeded)


def test_name_contains_from_config(moto_session):
    create(moto_session, "PaymentsStack", service_template("Payments"))
    create(moto_session, "UserServiceStack", service_template("UserService"))
    assert discover(config=Config(), boto3_session=moto_session).names == ["user"]
    estate = discover(config=Config(name_contains="Payments"), boto3_session=moto_session)
    assert estate.names == ["payments"]
    assert estate.service("payments").label == "Payments"


@pytest.mark.parametrize(
    ("stack", "short"),
    [
        ("UserServiceStack", "user"),
        ("OrderServiceStack", "order"),
        ("PaymentsStack", "payments"),
        ("order-service-stack", "order"),
        ("UserService", "userservice"),
        ("ServiceStack", "servicestack"),
    ],
)
def test_short_name(stack, short):
    assert short_name(stack) == short


def test_health_url_is_not_doubled():
    assert health_url("https://h/prod") == "https://h/prod/health"
    assert health_url("https://h/prod/") == "https://h/prod/health"
    assert health_url("https://h/prod/health") == "https://h/prod/health"
    assert health_url(None) is None


def test_empty_estate_frame_is_typed():
    frame = Estate("eu-central-1", []).to_frame()
    assert frame.empty
    assert str(frame.dtypes["service"]) == "string"
    with pytest.raises(UnknownServiceError, match="known services: none"):
        Estate("eu-central-1", []).service("user")


def test_nested_stack_resources_belong_to_the_root_service(moto_session):
    inner = json.loads(service_template("Inner"))
    del inner["Outputs"]
    s3 = moto_session.client("s3")
    s3.create_bucket(Bucket="templates", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.put_object(Bucket="templates", Key="inner.json", Body=json.dumps(inner).encode())
    root = json.loads(service_template("UserService"))
    root["Resources"]["Inner"] = {
        "Type": "AWS::CloudFormation::Stack",
        "Properties": {"TemplateURL": "https://templates.s3.amazonaws.com/inner.json"},
    }
    create(moto_session, "UserServiceStack", json.dumps(root))
    user = discover(config=Config(), boto3_session=moto_session).service("user")
    assert sorted(user.functions) == [
        "InnerStack-ServiceInnerFunction",
        "UserServiceStack-ServiceUserServiceFunction",
    ]
    assert sorted(user.apis) == ["InnerApi", "UserServiceApi"]
