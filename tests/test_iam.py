"""The printed IAM policy is exact, and the reports run under it alone with moto enforcing IAM.

One sandbox for the whole file (moto's state is per process). Users are created while moto
does not yet enforce IAM; each enforcing test then turns enforcement on (``POST
/moto-api/reset-auth`` with ``0``) and off again (``inf``) around itself.

What moto (5.2) can and cannot prove here:

- It enforces every operation the reports call except ``sts:GetCallerIdentity``, which it
  always allows, as AWS does (``test_moto_denies_each_operation_without_its_action``).
- It checks the *action* only, on resource ``*``, except S3 (the bucket ARN). So the
  ``/restapis`` scoping of ``apigateway:GET`` is not verified by moto.
- It names CloudWatch actions ``monitoring:<Action>`` and API Gateway actions by operation
  (``apigateway:GetRestApis``) instead of AWS's HTTP verb (``apigateway:GET``): the policy
  under test gets those twins (:func:`for_moto`), and nothing else.
- Its server-mode signature check signs a bodyless GET with the query parameters as its body,
  so ``GetRestApis?limit=500`` and ``ListFunctions`` fail with SignatureDoesNotMatch even for
  an allowed user; the ``moto_signs_gets_as_sent`` fixture corrects that in moto, in-process.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pandas as pd
import pytest

from evilent_nb import reports
from evilent_nb.aws import get_session, translate_errors, usage
from evilent_nb.exceptions import AccessDeniedError, AwsAccessError
from evilent_nb.iam import (
    ACTION_OF,
    MAINTENANCE_WRITE_ACTIONS,
    READ_ACTIONS,
    READ_OPERATIONS,
    WRITE_OPERATIONS,
    iam_policy,
)
from evilent_nb.report import ReportContext, _preflight
from evilent_nb.sandbox import Sandbox

pytest.importorskip("moto")

GATHERERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "health": (reports.gather_health, {}),
    "cost": (reports.gather_cost, {}),
    "incident": (reports.gather_incident, {"service": "product"}),
    "maintenance": (reports.gather_maintenance, {"apply": False}),
}

# moto's name for an action, where it differs from AWS's.
MOTO_TWINS = {"apigateway:GET": ["apigateway:GetRestApis"]}


def for_moto(policy: dict[str, Any]) -> dict[str, Any]:
    """``policy`` plus the names moto checks instead: ``monitoring:`` and ``apigateway:<Op>``.

    The twins get their own statement on ``*`` (moto checks these services on ``*``).
    """
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    twins = [a.replace("cloudwatch:", "monitoring:", 1) for a in actions if a.startswith("cloudwatch:")]
    twins += [t for a in actions for t in MOTO_TWINS.get(a, [])]
    twin = {"Sid": "MotoNames", "Effect": "Allow", "Action": sorted(twins), "Resource": "*"}
    return {**policy, "Statement": [*policy["Statement"], twin]}


def without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    statements = [{**s, "Action": [a for a in s["Action"] if a != action]} for s in policy["Statement"]]
    return {**policy, "Statement": [s for s in statements if s["Action"]]}


def policy_actions(policy: dict[str, Any]) -> list[str]:
    return [a for s in policy["Statement"] for a in s["Action"]]


@pytest.fixture(scope="class")
def moto_signs_gets_as_sent():
    """Correct moto's signature check for bodyless GETs (see the module docstring)."""
    from moto.iam import access_control

    original = access_control.IAMRequestBase._create_aws_request

    def create_aws_request(self: Any) -> Any:
        kept = self._data
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            self._data = {}  # a GET's parameters are in its URL, not its body
        try:
            return original(self)
        finally:
            self._data = kept

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(access_control.IAMRequestBase, "_create_aws_request", create_aws_request)
        yield


def reset_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        response.read()


class TestPolicyUnderMotoIam:
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, moto_signs_gets_as_sent):
        with Sandbox("incident") as sb:
            try:
                yield sb
            finally:
                reset_auth(sb.endpoint_url, "inf")  # moto's settings outlive the sandbox

    @pytest.fixture(scope="class")
    @classmethod
    def users(cls, sandbox) -> dict[str, dict[str, str]]:
        """IAM users in moto, made before enforcement starts: name -> their key's variables."""
        iam = boto3.client("iam", endpoint_url=sandbox.endpoint_url, region_name=sandbox.scenario.region,
                           aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        policies = {
            "reports": for_moto(iam_policy()),
            "maintainer": for_moto(iam_policy(with_maintenance_writes=True)),
            "no-filter": without(for_moto(iam_policy()), "logs:FilterLogEvents"),
            "nobody": None,
        }
        keys: dict[str, dict[str, str]] = {}
        for user, document in policies.items():
            iam.create_user(UserName=user)
            if document is not None:
                arn = iam.create_policy(PolicyName=f"evilent-nb-{user}",
                                        PolicyDocument=json.dumps(document))["Policy"]["Arn"]  # fmt: skip
                iam.attach_user_policy(UserName=user, PolicyArn=arn)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        return keys

    @pytest.fixture
    def as_user(self, sandbox, users, monkeypatch: pytest.MonkeyPatch):
        """Point the environment at the sandbox as ``user`` (None: the seeding admin)."""

        def switch(user: str | None) -> None:
            for key, value in sandbox.env.items():
                monkeypatch.setenv(key, value)
            for key, value in (users[user] if user else {}).items():
                monkeypatch.setenv(key, value)

        return switch

    @pytest.fixture
    def enforced(self, sandbox, users):
        reset_auth(sandbox.endpoint_url, "0")
        try:
            yield
        finally:
            reset_auth(sandbox.endpoint_url, "inf")

    @pytest.fixture(scope="class")
    @classmethod
    def admin_run(cls, sandbox):
        """Every report under the sandbox's unrestricted credentials, before any enforcement."""
        with pytest.MonkeyPatch.context() as mp:
            for key, value in sandbox.env.items():
                mp.setenv(key, value)
            return run_all(sandbox)

    # -- the policy is exact ----------------------------------------------------------

    def test_reports_call_exactly_the_operations_the_policy_grants(self, admin_run) -> None:
        called = set(admin_run["calls"])
        assert called == set(READ_OPERATIONS), (
            f"called but not in the policy: {sorted(called - set(READ_OPERATIONS))}; "
            f"in the policy but never called: {sorted(set(READ_OPERATIONS) - called)}"
        )
        assert {ACTION_OF[op] for op in called} == set(READ_ACTIONS)
        printed = policy_actions(iam_policy())
        assert sorted(printed) == sorted(READ_ACTIONS) and len(printed) == len(set(printed))
        assert not any(a.split(":")[1].startswith(("Put", "Delete", "Create", "Update", "Start", "Stop"))
                       for a in printed)  # fmt: skip
        # nothing failed under admin, and there is something to compare with
        assert all(set(s.values()) == {"ok"} for s in admin_run["sources"].values())
        assert all(not f.empty for f in admin_run["findings"].values())

    def test_the_write_statement_holds_exactly_the_maintenance_writes(self) -> None:
        both = iam_policy(with_maintenance_writes=True)["Statement"]
        assert both[-1]["Action"] == list(MAINTENANCE_WRITE_ACTIONS) == sorted(WRITE_OPERATIONS.values()) == [
            "cloudwatch:PutMetricAlarm", "logs:DeleteLogStream", "logs:PutRetentionPolicy"]
        assert both[:-1] == iam_policy()["Statement"]

    # -- under moto's enforcement -----------------------------------------------------

    def test_reports_run_under_the_policy_alone(self, sandbox, admin_run, as_user, enforced) -> None:
        as_user("reports")
        run = run_all(sandbox)
        assert run["calls"] == admin_run["calls"]
        assert run["sources"] == admin_run["sources"]
        for report, admin_findings in admin_run["findings"].items():
            assert "data_unavailable" not in set(run["findings"][report]["check"])
            pd.testing.assert_frame_equal(run["findings"][report], admin_findings)
        # enforcement was on: a key that is no moto IAM user is refused
        as_user(None)
        with pytest.raises(AccessDeniedError):
            _preflight({})

    def test_moto_denies_each_operation_without_its_action(self, sandbox, as_user, enforced) -> None:
        as_user("nobody")
        session = get_session()
        denied = {op for op, (service, method, params) in operation_calls(sandbox).items()
                  if _denied(session, op, service, method, params)}  # fmt: skip
        # GetCallerIdentity cannot be denied, on AWS as in moto; everything else is enforced
        assert denied == set(ACTION_OF) - {"sts.GetCallerIdentity"}
        # the sandbox's own key is not a moto IAM user: refused at the pre-flight
        as_user(None)
        with pytest.raises(AccessDeniedError, match="sts.GetCallerIdentity"):
            _preflight({})

    def test_a_missing_action_fails_the_report_naming_its_source(self, sandbox, as_user, enforced) -> None:
        as_user("no-filter")
        with pytest.raises(AccessDeniedError, match=r"logs\.FilterLogEvents") as info:
            run(sandbox, "health")
        assert isinstance(info.value, AwsAccessError) and info.value.exit_code == 3
        assert "evilent-nb iam-policy" in str(info.value)
        # the reports that do not filter logs are unaffected
        assert run(sandbox, "cost")[0].sources == {"ce.GetCostAndUsage": "ok"}

    def test_read_only_policy_cannot_apply_maintenance(self, sandbox, as_user, enforced) -> None:
        as_user("reports")
        ctx, data = run(sandbox, "maintenance", apply=True)
        results = _writes(data)
        # the incident scenario: one group without retention, three stale streams, two missing alarms
        assert [len(data.retention_result), len(data.stale_result), len(data.alarm_result)] == [1, 3, 2]
        assert all(s.startswith("error: access denied by AWS for ") for s in results["status"])
        assert not results["applied"].any()
        assert set(ctx.usage["calls"]) - set(READ_OPERATIONS) == set(WRITE_OPERATIONS)
        # nothing changed: the same findings again
        again, _ = run(sandbox, "maintenance")
        pd.testing.assert_frame_equal(again.findings, ctx.findings)

    def test_maintenance_applies_with_the_write_statement(self, sandbox, admin_run, as_user, enforced) -> None:
        as_user("maintainer")
        ctx, data = run(sandbox, "maintenance", apply=True)
        results = _writes(data)
        assert len(results) == 6 and set(results["status"]) == {"done"} and results["applied"].all()
        assert {ACTION_OF[op] for op in set(ctx.usage["calls"]) - set(READ_OPERATIONS)} == set(
            MAINTENANCE_WRITE_ACTIONS)
        pd.testing.assert_frame_equal(ctx.findings, admin_run["findings"]["maintenance"])
        after, _ = run(sandbox, "maintenance")
        assert not {"log_retention", "stale_log_streams", "missing_alarm"} & set(after.findings["check"])


def run(sandbox, report: str, **kw: Any) -> tuple[ReportContext, Any]:
    """One gatherer through a fresh ReportContext, at the sandbox's frozen now."""
    fn, defaults = GATHERERS[report]
    ctx = ReportContext.open(report, now=sandbox.now)  # one frozen now: comparable runs
    return ctx, fn(ctx, **{**defaults, **kw})


def run_all(sandbox) -> dict[str, Any]:
    """The runner's pre-flight, then the four gatherers: calls, findings and sources."""
    calls = Counter(usage(_preflight({})).to_dict()["calls"])
    out: dict[str, Any] = {"findings": {}, "sources": {}}
    for report in GATHERERS:
        ctx, _ = run(sandbox, report)
        calls.update(ctx.usage["calls"])
        out["findings"][report] = ctx.findings
        out["sources"][report] = dict(ctx.sources)
    out["calls"] = calls
    return out


def _writes(data: Any) -> pd.DataFrame:
    return pd.concat([data.retention_result, data.stale_result, data.alarm_result], ignore_index=True)


def _denied(session: Any, op: str, service: str, method: str, params: dict[str, Any]) -> bool:
    try:
        with translate_errors(op):
            getattr(session.client(service), method)(**params)
    except AccessDeniedError:
        return True
    return False


def operation_calls(sandbox) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """One small call of every operation in ACTION_OF: op -> (service, method, params)."""
    group = "/aws/lambda/ProductServiceStack-ServiceProductServiceFunction"
    stack = "ProductServiceStack"
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Errors"}
    calls = {
        "apigateway.GetRestApis": ("apigateway", "get_rest_apis", {"limit": 500}),
        "ce.GetCostAndUsage": ("ce", "get_cost_and_usage", {
            "TimePeriod": {"Start": "2026-01-01", "End": "2026-01-02"}, "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"]}),
        "cloudformation.DescribeStackEvents": ("cloudformation", "describe_stack_events", {"StackName": stack}),
        "cloudformation.DescribeStacks": ("cloudformation", "describe_stacks", {}),
        "cloudformation.ListStackResources": ("cloudformation", "list_stack_resources", {"StackName": stack}),
        "cloudwatch.DescribeAlarms": ("cloudwatch", "describe_alarms", {}),
        "cloudwatch.GetMetricData": ("cloudwatch", "get_metric_data", {
            "MetricDataQueries": [{"Id": "m0", "MetricStat": {"Metric": metric, "Period": 3600, "Stat": "Sum"}}],
            "StartTime": sandbox.now - timedelta(hours=1), "EndTime": sandbox.now}),
        "iam.ListPolicies": ("iam", "list_policies", {"Scope": "Local"}),
        "lambda.ListFunctions": ("lambda", "list_functions", {}),
        "logs.DescribeLogGroups": ("logs", "describe_log_groups", {}),
        "logs.DescribeLogStreams": ("logs", "describe_log_streams", {"logGroupName": group}),
        "logs.FilterLogEvents": ("logs", "filter_log_events", {"logGroupName": group, "limit": 1}),
        "rds.DescribeDBInstances": ("rds", "describe_db_instances", {}),
        "rds.DescribeDBSnapshots": ("rds", "describe_db_snapshots", {}),
        "s3.ListObjectsV2": ("s3", "list_objects_v2", {"Bucket": sandbox.scenario.backups.bucket}),
        "sns.ListTopics": ("sns", "list_topics", {}),
        "sts.GetCallerIdentity": ("sts", "get_caller_identity", {}),
        # writes: denied before anything is written
        "cloudwatch.PutMetricAlarm": ("cloudwatch", "put_metric_alarm", {
            "AlarmName": "evilent-nb-iam-test", **metric, "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}),
        "logs.DeleteLogStream": ("logs", "delete_log_stream", {"logGroupName": group, "logStreamName": "none"}),
        "logs.PutRetentionPolicy": ("logs", "put_retention_policy", {"logGroupName": group, "retentionInDays": 30}),
    }  # fmt: skip
    assert set(calls) == set(ACTION_OF)
    return calls
