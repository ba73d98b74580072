"""Inventory frames: seeded in-process moto data (exact values) and Stubber for paging."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from botocore.stub import Stubber
from conftest import aws_example

from evilent_nb import inventory as inv
from evilent_nb.aws import client, usage
from evilent_nb.exceptions import AccessDeniedError, DataSourceError
from evilent_nb.frames import SCHEMAS
from evilent_nb.timeframe import Window

ACCOUNT = "123456789012"
REGION = "eu-central-1"
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def assert_schema(frame: pd.DataFrame, schema: str) -> None:
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMAS[schema]


# -- CloudFormation ----------------------------------------------------------------------

STACK = json.dumps(
    {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t1"}},
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "SomeApi"}},
        },
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}, "SomeApiUrl": {"Value": "https://x/prod"}},
    }
)
BARE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t2"}}}})


def test_stacks_with_outputs_and_filters(moto_session):
    cfn = moto_session.client("cloudformation")
    cfn.create_stack(StackName="UserServiceStack", TemplateBody=STACK)
    cfn.create_stack(StackName="IamStack", TemplateBody=BARE)
    cfn.create_stack(StackName="GoneServiceStack", TemplateBody=BARE.replace("t2", "t3"))
    cfn.delete_stack(StackName="GoneServiceStack")

    frame = inv.stacks(boto3_session=moto_session)
    assert_schema(frame, "stacks")
    assert sorted(frame.name) == ["IamStack", "UserServiceStack"]
    user = frame.set_index("name").loc["UserServiceStack"]
    assert user.status == "CREATE_COMPLETE"
    assert user.outputs == {
        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:t1",
        "SomeApiUrl": "https://x/prod",
    }
    assert user.created.tzinfo is not None
    assert user.stack_id.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/UserServiceStack/")
    assert frame.set_index("name").loc["IamStack"].outputs == {}

    assert inv.stacks(name_contains="Service", boto3_session=moto_session).name.tolist() == ["UserServiceStack"]
    assert inv.stacks(name_contains="service", boto3_session=moto_session).empty  # case-sensitive, as the runbook
    assert inv.stacks(statuses=["UPDATE_COMPLETE"], boto3_session=moto_session).empty
    assert len(inv.stacks(statuses=["CREATE_COMPLETE"], boto3_session=moto_session)) == 2


def test_stack_resources_and_missing_stack(moto_session):
    moto_session.client("cloudformation").create_stack(StackName="UserServiceStack", TemplateBody=STACK)
    frame = inv.stack_resources("UserServiceStack", boto3_session=moto_session)
    assert_schema(frame, "stack_resources")
    by_id = frame.set_index("logical_id")
    assert sorted(by_id.index) == ["Api", "Topic"]
    assert by_id.loc["Topic", "resource_type"] == "AWS::SNS::Topic"
    assert by_id.loc["Topic", "physical_id"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:t1"
    api_ids = [a["id"] for a in moto_session.client("apigateway").get_rest_apis()["items"]]
    assert [by_id.loc["Api", "physical_id"]] == api_ids
    assert set(frame["stack"]) == {"UserServiceStack"}
    assert set(frame.status) == {"CREATE_COMPLETE"}

    missing = inv.stack_resources("NoSuchStack", boto3_session=moto_session)
    assert missing.empty
    assert_schema(missing, "stack_resources")
    assert inv.stack_events("NoSuchStack", boto3_session=moto_session).empty


def test_stack_events_from_moto(moto_session):
    moto_session.client("cloudformation").create_stack(StackName="IamStack", TemplateBody=BARE)
    frame = inv.stack_events("IamStack", boto3_session=moto_session)
    assert_schema(frame, "stack_events")
    assert len(frame) >= 2
    assert set(frame["stack"]) == {"IamStack"}
    assert frame.timestamp.is_monotonic_decreasing  # newest first, as AWS lists them
    assert frame.status.iloc[0] == "CREATE_COMPLETE"
    future = Window(datetime.now(UTC) + timedelta(days=1), datetime.now(UTC) + timedelta(days=2))
    assert inv.stack_events("IamStack", window=future, boto3_session=moto_session).empty


def _event(event_id: str, ts: str, status: str) -> dict:
    base = aws_example("describe_stack_events")["StackEvents"][0]
    return {**base, "EventId": event_id, "Timestamp": ts, "ResourceStatus": status}


def test_stack_events_stop_paging_past_the_window(session):
    cfn = client("cloudformation", session)
    first = aws_example("describe_stack_events")  # 2019-10-02T05:34:29, with a NextToken
    second = {
        "StackEvents": [
            _event("e3", "2019-10-02T01:00:00Z", "UPDATE_IN_PROGRESS"),
            _event("e4", "2019-10-01T23:00:00Z", "CREATE_COMPLETE"),
        ],
        "NextToken": "page3",
    }
    third = {"StackEvents": [_event("e5", "2019-09-01T00:00:00Z", "CREATE_IN_PROGRESS")]}
    counter = usage(session)
    counter.reset()
    with Stubber(cfn) as stub:
        stub.add_response("describe_stack_events", first, {"StackName": "my-stack"})
        stub.add_response("describe_stack_events", second, {"StackName": "my-stack", "NextToken": first["NextToken"]})
        stub.add_response("describe_stack_events", third, {"StackName": "my-stack", "NextToken": "page3"})
        window = Window(datetime(2019, 10, 2, tzinfo=UTC), datetime(2019, 10, 2, 5, 34, 29, 200000, tzinfo=UTC))
        frame = inv.stack_events("my-stack", window=window, boto3_session=session)
        with pytest.raises(AssertionError):  # page 3 was never asked for
            stub.assert_no_pending_responses()
    assert counter.calls["cloudformation.DescribeStackEvents"] == 2
    assert_schema(frame, "stack_events")
    # 05:34:29.556 is after window.end, 23:00 the day before is before window.start
    assert frame.event_id.tolist() == ["4dd3c810-e4d6-xmpl-bade-0aaf8b31ab7a", "e3"]
    assert frame.status.tolist() == ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_IN_PROGRESS"]
    assert frame.timestamp.tolist() == [
        pd.Timestamp("2019-10-02T05:34:29.127Z"),
        pd.Timestamp("2019-10-02T01:00:00Z"),
    ]
    assert frame.resource_type.tolist() == ["AWS::CloudFormation::Stack"] * 2


def test_stack_events_without_window_pages_to_the_end(session):
    cfn = client("cloudformation", session)
    first = aws_example("describe_stack_events")
    last = {"StackEvents": [_event("e3", "2019-09-01T00:00:00Z", "CREATE_COMPLETE")]}
    with Stubber(cfn) as stub:
        stub.add_response("describe_stack_events", first, {"StackName": "my-stack"})
        stub.add_response("describe_stack_events", last, {"StackName": "my-stack", "NextToken": first["NextToken"]})
        frame = inv.stack_events("my-stack", boto3_session=session)
        stub.assert_no_pending_responses()
    assert len(frame) == 3


# -- Lambda, API Gateway ---------------------------------------------------------------


def _role(session) -> str:
    return session.client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]


def test_functions(moto_session):
    lam, role = moto_session.client("lambda"), _role(moto_session)
    for name, runtime, memory, timeout in [
        ("UserServiceStack-ServiceUserServiceFunction", "nodejs18.x", 256, 30),
        ("ProductServiceStack-Fn", "python3.8", 128, 3),
        ("cron-job", "python3.12", 512, 900),
    ]:
        lam.create_function(
            FunctionName=name, Runtime=runtime, Role=role, Handler="index.handler",
            Code={"ZipFile": b"code"}, MemorySize=memory, Timeout=timeout,
        )
    frame = inv.functions(boto3_session=moto_session)
    assert_schema(frame, "functions")
    assert len(frame) == 3
    services = inv.functions(name_contains="Service", boto3_session=moto_session).set_index("name")
    assert sorted(services.index) == ["ProductServiceStack-Fn", "UserServiceStack-ServiceUserServiceFunction"]
    user = services.loc["UserServiceStack-ServiceUserServiceFunction"]
    assert (user.runtime, user.memory_mb, user.timeout_s, user.handler) == ("nodejs18.x", 256, 30, "index.handler")
    assert services.loc["ProductServiceStack-Fn", "runtime"] == "python3.8"
    assert user.arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:UserServiceStack-ServiceUserServiceFunction"
    assert abs(pd.Timestamp.now(tz="UTC") - user.last_modified) < pd.Timedelta(minutes=5)


def test_lambda_last_modified_format_is_parsed():
    assert inv._ts("2019-10-02T05:34:29.556+0000") == datetime(2019, 10, 2, 5, 34, 29, 556000, tzinfo=UTC)
    assert inv._ts("2019-10-02T07:00:00.000+0200") == datetime(2019, 10, 2, 5, 0, tzinfo=UTC)
    assert inv._ts(None) is None


def test_rest_apis(moto_session):
    gw = moto_session.client("apigateway")
    a = gw.create_rest_api(name="UserServiceApi", description="users")["id"]
    b = gw.create_rest_api(name="ProductServiceApi")["id"]
    frame = inv.rest_apis(boto3_session=moto_session)
    assert_schema(frame, "rest_apis")
    assert dict(zip(frame.id, frame.name, strict=True)) == {a: "UserServiceApi", b: "ProductServiceApi"}
    assert frame.set_index("id").loc[a, "description"] == "users"


# -- RDS and S3 ------------------------------------------------------------------------


@pytest.fixture
def rds(moto_session):
    rds = moto_session.client("rds")
    for ident in ("evilent-user-service-db", "other-db"):
        rds.create_db_instance(
            DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
        )
    return rds


def test_db_instances(moto_session, rds):
    frame = inv.db_instances(boto3_session=moto_session)
    assert_schema(frame, "db_instances")
    assert sorted(frame.id) == ["evilent-user-service-db", "other-db"]
    counter = usage(moto_session)
    counter.reset()
    one = inv.db_instances(ids=["evilent-user-service-db", "no-such-db"], boto3_session=moto_session)
    assert counter.calls["rds.DescribeDBInstances"] == 1
    assert one.id.tolist() == ["evilent-user-service-db"]
    row = one.iloc[0]
    assert (row.engine, row.status, row.instance_class) == ("postgres", "available", "db.t3.micro")
    assert row.endpoint.startswith("evilent-user-service-db.")
    assert inv.db_instances(ids="other-db", boto3_session=moto_session).id.tolist() == ["other-db"]
    missing = inv.db_instances(ids=["no-such-db"], boto3_session=moto_session)
    assert missing.empty
    assert_schema(missing, "db_instances")
    counter.reset()
    assert inv.db_instances(ids=[], boto3_session=moto_session).empty
    assert counter.total_calls == 0


def test_db_snapshots(moto_session, rds):
    rds.create_db_snapshot(DBInstanceIdentifier="evilent-user-service-db", DBSnapshotIdentifier="manual-1")
    rds.create_db_snapshot(DBInstanceIdentifier="other-db", DBSnapshotIdentifier="manual-other")
    frame = inv.db_snapshots(db="evilent-user-service-db", boto3_session=moto_session)
    assert_schema(frame, "db_snapshots")
    assert set(frame.db) == {"evilent-user-service-db"}
    assert "manual-1" in set(frame.id)
    assert frame.set_index("id").loc["manual-1", "snapshot_type"] == "manual"
    assert frame.created.is_monotonic_decreasing
    everything = inv.db_snapshots(boto3_session=moto_session)
    assert {"manual-1", "manual-other"} <= set(everything.id)
    assert set(everything.db) == {"evilent-user-service-db", "other-db"}
    assert inv.db_snapshots(db="no-such-db", boto3_session=moto_session).empty


def test_backup_objects(moto_session):
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="evilent-backups", CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in [
        ("user-service/2026-11-01.sql.gz", b"a" * 10),
        ("user-service/2026-11-08.sql.gz", b"b" * 25),
        ("product-service/2026-11-08.archive", b"c" * 7),
    ]:
        s3.put_object(Bucket="evilent-backups", Key=key, Body=body)
    frame = inv.backup_objects("evilent-backups", prefix="user-service/", boto3_session=moto_session)
    assert_schema(frame, "backup_objects")
    assert frame.key.tolist() == ["user-service/2026-11-01.sql.gz", "user-service/2026-11-08.sql.gz"]
    assert frame["size"].tolist() == [10, 25]
    assert set(frame.bucket) == {"evilent-backups"}
    assert len(inv.backup_objects("evilent-backups", boto3_session=moto_session)) == 3
    assert inv.backup_objects("evilent-backups", prefix="nothing/", boto3_session=moto_session).empty
    missing = inv.backup_objects("no-such-bucket", boto3_session=moto_session)
    assert missing.empty
    assert_schema(missing, "backup_objects")


# -- IAM -------------------------------------------------------------------------------


def test_policies_attachment_counts(moto_session):
    iam = moto_session.client("iam")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]})
    arns = {n: iam.create_policy(PolicyName=n, PolicyDocument=doc)["Policy"]["Arn"] for n in ("used", "twice", "unused")}
    iam.create_role(RoleName="r1", AssumeRolePolicyDocument=ROLE_POLICY)
    iam.create_user(UserName="u1")
    iam.attach_role_policy(RoleName="r1", PolicyArn=arns["used"])
    iam.attach_role_policy(RoleName="r1", PolicyArn=arns["twice"])
    iam.attach_user_policy(UserName="u1", PolicyArn=arns["twice"])
    frame = inv.policies(boto3_session=moto_session)
    assert_schema(frame, "policies")
    assert dict(zip(frame.name, frame.attachment_count, strict=True)) == {"used": 1, "twice": 2, "unused": 0}
    assert frame.set_index("name").loc["unused", "arn"] == f"arn:aws:iam::{ACCOUNT}:policy/unused"


# -- CloudWatch Logs -------------------------------------------------------------------


def test_log_groups_retention(moto_session):
    logs = moto_session.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/a")
    logs.create_log_group(logGroupName="/aws/lambda/b")
    logs.create_log_group(logGroupName="/custom/c")
    logs.put_retention_policy(logGroupName="/aws/lambda/b", retentionInDays=30)
    frame = inv.log_groups(prefix="/aws/lambda/", boto3_session=moto_session)
    assert_schema(frame, "log_groups")
    assert frame.name.tolist() == ["/aws/lambda/a", "/aws/lambda/b"]
    retention = frame.set_index("name").retention_days
    assert retention.loc["/aws/lambda/a"] is pd.NA
    assert retention.loc["/aws/lambda/b"] == 30
    assert len(inv.log_groups(boto3_session=moto_session)) == 3


def test_log_streams_older_than(moto_session):
    from moto.logs.models import LogEvent, logs_backends

    logs = moto_session.client("logs")
    group = "/aws/lambda/fn"
    logs.create_log_group(logGroupName=group)
    now = datetime.now(UTC).replace(microsecond=0)
    ms = lambda dt: int(dt.timestamp() * 1000)  # noqa: E731
    for name in ("fresh", "old", "empty-old", "empty-new"):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    logs.put_log_events(logGroupName=group, logStreamName="fresh", logEvents=[{"timestamp": ms(now - timedelta(hours=1)), "message": "hi"}])
    # moto refuses events older than 14 days through the API: seed the backend directly
    streams = logs_backends[ACCOUNT][REGION].groups[group].streams
    old_first, old_last = now - timedelta(days=45), now - timedelta(days=40)
    streams["old"].events += [
        LogEvent(ms(old_first), {"timestamp": ms(old_first), "message": "a"}),
        LogEvent(ms(old_last), {"timestamp": ms(old_last), "message": "b"}),
    ]
    # moto's backend keeps naive UTC datetimes
    streams["old"].last_ingestion_time = old_last.replace(tzinfo=None)
    streams["empty-old"].creation_time = (now - timedelta(days=60)).replace(tzinfo=None)

    every = inv.log_streams(group, boto3_session=moto_session)
    assert_schema(every, "log_streams")
    assert sorted(every.name) == ["empty-new", "empty-old", "fresh", "old"]
    old = every.set_index("name").loc["old"]
    assert (old.first_event, old.last_event) == (pd.Timestamp(old_first), pd.Timestamp(old_last))
    assert every.set_index("name").loc["empty-new", "last_event"] is pd.NaT

    stale = inv.log_streams(group, older_than=timedelta(days=30), now=now, boto3_session=moto_session)
    assert sorted(stale.name) == ["empty-old", "old"]
    assert set(stale.log_group) == {group}
    cutoff = inv.log_streams(group, older_than=now - timedelta(days=42), boto3_session=moto_session)
    assert cutoff.name.tolist() == ["empty-old"]
    missing = inv.log_streams("/no/such/group", boto3_session=moto_session)
    assert missing.empty
    assert_schema(missing, "log_streams")


# -- CloudWatch alarms -----------------------------------------------------------------


def test_alarms_with_state_filter(moto_session):
    cw = moto_session.client("cloudwatch")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts-topic"
    cw.put_metric_alarm(
        AlarmName="UserService-HighErrorRate", Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "UserFn"}], Statistic="Sum", Period=3600,
        EvaluationPeriods=1, Threshold=10.0, ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
    )
    cw.put_metric_alarm(
        AlarmName="UserService-HighLatency", Namespace="AWS/Lambda", MetricName="Duration",
        Dimensions=[{"Name": "FunctionName", "Value": "UserFn"}], Statistic="Average", Period=300,
        EvaluationPeriods=2, Threshold=5000.0, ComparisonOperator="GreaterThanThreshold",
    )
    cw.put_metric_alarm(
        AlarmName="Other", Namespace="AWS/RDS", MetricName="CPUUtilization", Statistic="Average",
        Period=60, EvaluationPeriods=1, Threshold=80.0, ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName="UserService-HighErrorRate", StateValue="ALARM", StateReason="12 errors")
    frame = inv.alarms(boto3_session=moto_session)
    assert_schema(frame, "alarms")
    assert len(frame) == 3
    firing = inv.alarms(state="ALARM", boto3_session=moto_session)
    assert firing.name.tolist() == ["UserService-HighErrorRate"]
    row = firing.iloc[0]
    assert (row.state, row.namespace, row.metric, row.statistic) == ("ALARM", "AWS/Lambda", "Errors", "Sum")
    assert (row.threshold, row.period, row.evaluation_periods) == (10.0, 3600, 1)
    assert row.dimensions == {"FunctionName": "UserFn"}
    assert row.actions == [topic]
    assert row.comparison == "GreaterThanThreshold"
    assert row.state_reason == "12 errors"
    user = inv.alarms(prefix="UserService-", boto3_session=moto_session).set_index("name")
    assert sorted(user.index) == ["UserService-HighErrorRate", "UserService-HighLatency"]
    assert user.loc["UserService-HighLatency", "actions"] == []
    # (moto applies only one of StateValue / AlarmNamePrefix, so they are not combined here)


# -- empty and failing sources ---------------------------------------------------------


def test_empty_account_gives_typed_empty_frames(moto_session):
    cases = {
        "stacks": inv.stacks(boto3_session=moto_session),
        "functions": inv.functions(boto3_session=moto_session),
        "rest_apis": inv.rest_apis(boto3_session=moto_session),
        "db_instances": inv.db_instances(boto3_session=moto_session),
        "db_snapshots": inv.db_snapshots(boto3_session=moto_session),
        "policies": inv.policies(boto3_session=moto_session),
        "log_groups": inv.log_groups(boto3_session=moto_session),
        "alarms": inv.alarms(boto3_session=moto_session),
        "stack_events": inv.stack_events("x", boto3_session=moto_session),
    }
    for schema, frame in cases.items():
        assert frame.empty, schema
        assert_schema(frame, schema)


def test_failures_are_translated(session):
    lam = client("lambda", session)
    with Stubber(lam) as stub:
        stub.add_client_error("list_functions", "ServiceException", "boom", http_status_code=500)
        with pytest.raises(DataSourceError) as info:
            inv.functions(boto3_session=session)
    assert info.value.source == "lambda.ListFunctions"
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_client_error("describe_log_groups", "AccessDeniedException", "no", http_status_code=400)
        with pytest.raises(AccessDeniedError, match="logs.DescribeLogGroups"):
            inv.log_groups(boto3_session=session)
    cfn = client("cloudformation", session)
    with Stubber(cfn) as stub:  # a ValidationError that is not "does not exist" still raises
        stub.add_client_error("list_stack_resources", "ValidationError", "1 validation error", http_status_code=400)
        with pytest.raises(DataSourceError, match="ValidationError"):
            inv.stack_resources("bad name!", boto3_session=session)


def test_stacks_root_only_leaves_out_nested_stacks(session):
    cfn = client("cloudformation", session)
    created = datetime(2026, 11, 1, tzinfo=UTC)
    page = {
        "Stacks": [
            {"StackName": "UserServiceStack", "StackId": "arn:root", "StackStatus": "UPDATE_COMPLETE",
             "CreationTime": created, "LastUpdatedTime": created + timedelta(days=1)},
            {"StackName": "UserServiceStack-DbServiceNested-1", "StackId": "arn:nested", "StackStatus": "UPDATE_ROLLBACK_FAILED",
             "CreationTime": created, "ParentId": "arn:root", "RootId": "arn:root", "StackStatusReason": "boom"},
        ]
    }
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", page, {})
        stub.add_response("describe_stacks", page, {})
        every = inv.stacks(boto3_session=session)
        roots = inv.stacks(root_only=True, boto3_session=session)
    assert every.name.tolist() == ["UserServiceStack", "UserServiceStack-DbServiceNested-1"]
    assert every.last_updated.tolist()[0] == pd.Timestamp("2026-11-02T00:00:00Z")
    assert every.last_updated.isna().tolist() == [False, True]
    assert every.status_reason.tolist() == [pd.NA, "boom"]
    assert roots.name.tolist() == ["UserServiceStack"]
