"""Estate discovery: API calls and wall time against the number of service stacks.

For S in {2, 10, 30} service stacks (each: IAM role, Lambda function with inline code,
REST API, log group) plus one unrelated stack, created in in-process moto (``mock_aws``),
``evilent_nb.estate.discover`` should make: DescribeStacks (one call per page of 100
stacks on AWS), ListStackResources once per *service* stack (the unrelated one is
filtered out by name before any call), and one GetRestApis (per page of up to 500 APIs),
i.e. S + 2 calls. Calls come from ``evilent_nb.aws.usage``.

Run: ``.venv/bin/python benchmarks/discovery_scaling.py``
"""

from __future__ import annotations

import json

from _common import machine, offline_env, table, timer

SIZES = (2, 10, 30)


def template(i: int) -> str:
    code = "exports.handler = async () => ({ statusCode: 200 });\n// xx\n"
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": f"bench-svc{i:02d}-role",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}}},
            "ServiceFunction": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": f"Svc{i:02d}ServiceStack-ServiceFunction", "Runtime": "nodejs20.x",
                "Handler": "index.handler", "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Code": {"ZipFile": code}}},
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": f"Svc{i:02d}ServiceApi"}},
            "FunctionLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": f"/aws/lambda/Svc{i:02d}ServiceStack-ServiceFunction"}},
        },
        "Outputs": {f"Svc{i:02d}ApiUrl": {"Value": f"http://127.0.0.1:9/svc{i:02d}"}},
    })


OTHER = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "ops"}}}})


def main() -> None:
    offline_env()
    from moto import mock_aws

    from evilent_nb import aws
    from evilent_nb.config import Config
    from evilent_nb.estate import discover

    rows = []
    for n in SIZES:
        with mock_aws(config={"lambda": {"use_docker": False}}):
            cfn = aws.client("cloudformation", aws.get_session())
            with timer() as t_seed:
                cfn.create_stack(StackName="NetworkStack", TemplateBody=OTHER)
                for i in range(n):
                    cfn.create_stack(StackName=f"Svc{i:02d}ServiceStack", TemplateBody=template(i),
                                     Capabilities=["CAPABILITY_NAMED_IAM"])
            session = aws.get_session()
            for service in ("cloudformation", "apigateway"):
                aws.client(service, session)  # client creation is not part of discovery
            with timer() as t:
                estate = discover(config=Config(), boto3_session=session)
            calls = aws.usage(session).calls
            total = sum(calls.values())
            ok = (len(estate.services) == n and len(estate.functions) == n and len(estate.apis) == n)
            rows.append([n, calls.get("cloudformation.DescribeStacks", 0),
                         calls.get("cloudformation.ListStackResources", 0),
                         calls.get("apigateway.GetRestApis", 0), total, n + 2,
                         "yes" if ok else "NO", t[0], t_seed[0]])
    print(f"## Estate discovery ({machine()})\n")
    print("S service stacks (role, function, REST API, log group) + 1 unrelated stack; in-process moto.\n")
    print(table(["service stacks", "DescribeStacks", "ListStackResources", "GetRestApis", "total calls",
                 "expected S + 2", "all found", "wall s", "seed s"], rows))


if __name__ == "__main__":
    main()
