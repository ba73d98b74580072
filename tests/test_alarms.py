"""Alarms as code: the plan is an exact diff, dry runs write nothing, apply converges."""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.stub import Stubber

from evilent_nb.alarms import (
    alarm_label,
    apply_alarms,
    check_missing_alarm,
    plan_alarms,
    resolve_topic_arn,
)
from evilent_nb.aws import client, usage
from evilent_nb.config import default_rulebook
from evilent_nb.estate import Estate, Service
from evilent_nb.exceptions import ParameterError
from evilent_nb.frames import SCHEMAS
from evilent_nb.inventory import alarms as read_alarms

USER_FN = "UserServiceStack-ServiceUserServiceFunction"
PRODUCT_FN = "ProductServiceStack-ServiceProductServiceFunction"
ORDER_FNS = ("OrderServiceStack-ApiFunction", "OrderServiceStack-WorkerFunction")


def _estate() -> Estate:
    return Estate(
        "eu-central-1",
        [
            Service("user", "UserServiceStack", "CREATE_COMPLETE", functions=(USER_FN,)),
            Service("product", "ProductServiceStack", "UPDATE_COMPLETE", functions=(PRODUCT_FN,)),
            Service("order", "OrderServiceStack", "CREATE_COMPLETE", functions=ORDER_FNS),
            Service("empty", "EmptyServiceStack", "CREATE_COMPLETE"),  # no function: no alarm
        ],
    )


def _put(cw, name: str, *, fn: str, metric: str, stat: str, period: int, evals: int,
         threshold: float, actions: list[str], **extra) -> None:
    cw.put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName=metric, Statistic=stat,
        Dimensions=[{"Name": "FunctionName", "Value": fn}], Period=period,
        EvaluationPeriods=evals, Threshold=threshold, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=actions, **extra,
    )


@pytest.fixture
def seeded(moto_session):
    """A topic, the user service's HighLatency right, its HighErrorRate at threshold 20."""
    s = moto_session
    topic = client("sns", s).create_topic(Name="alerts-topic")["TopicArn"]
    pager = client("sns", s).create_topic(Name="pager")["TopicArn"]
    cw = client("cloudwatch", s)
    _put(cw, "UserService-HighLatency", fn=USER_FN, metric="Duration", stat="Average",
         period=300, evals=2, threshold=5000, actions=[topic])
    _put(cw, "UserService-HighErrorRate", fn=USER_FN, metric="Errors", stat="Sum",
         period=3600, evals=1, threshold=20, actions=[pager],
         AlarmDescription="hand-made", OKActions=[pager], TreatMissingData="notBreaching")
    _put(cw, "Unrelated-Alarm", fn="other", metric="Errors", stat="Sum",
         period=60, evals=1, threshold=1, actions=[])
    return s, topic, pager


def test_alarm_label_follows_the_estate():
    assert alarm_label("UserServiceStack") == "UserService"
    assert alarm_label("payments-stack") == "payments"
    assert alarm_label("Plain") == "Plain"
    assert alarm_label("OrderServiceStack") == Service("order", "OrderServiceStack", "X").label


def test_plan_is_the_exact_diff(seeded):
    s, topic, pager = seeded
    plan = plan_alarms(_estate(), read_alarms(boto3_session=s), rulebook=default_rulebook(), topic_arn=topic)

    assert plan[["action", "name", "function", "service"]].values.tolist() == [
        ["update", "UserService-HighErrorRate", USER_FN, "user"],
        ["create", "ProductService-HighErrorRate", PRODUCT_FN, "product"],
        ["create", "ProductService-HighLatency", PRODUCT_FN, "product"],
        ["create", "OrderService-ApiFunction-HighErrorRate", ORDER_FNS[0], "order"],
        ["create", "OrderService-ApiFunction-HighLatency", ORDER_FNS[0], "order"],
        ["create", "OrderService-WorkerFunction-HighErrorRate", ORDER_FNS[1], "order"],
        ["create", "OrderService-WorkerFunction-HighLatency", ORDER_FNS[1], "order"],
    ]
    assert (plan["target"] == plan["name"]).all()
    update = plan.iloc[0]
    assert update["differences"] == f"threshold 20 -> 10; actions: add {topic}"
    assert update["alarm_actions"] == [pager, topic]  # actions are only ever added
    assert (plan["differences"].iloc[1:] == "missing").all()
    assert plan.attrs["expected"] == 8 and plan.attrs["ok"] == 1 and plan.attrs["warnings"] == []
    latency = plan[plan["alarm"] == "HighLatency"].iloc[0]
    assert (latency["metric"], latency["statistic"], latency["period"], latency["evaluation_periods"],
            latency["threshold"], latency["comparison"], latency["topic_arn"]) == (
        "Duration", "Average", 300, 2, 5000.0, "GreaterThanThreshold", topic)


def test_every_setting_is_compared():
    existing = pd.DataFrame([{
        "name": "UserService-HighLatency", "namespace": "AWS/Lambda", "metric": "Duration",
        "dimensions": {"FunctionName": "somebody-else"}, "statistic": "Maximum",
        "threshold": 5000.0, "period": 60, "evaluation_periods": 3,
        "comparison": "GreaterThanOrEqualToThreshold", "actions": ["arn:aws:sns:r:1:t"],
    }])
    svc = Service("user", "UserServiceStack", "CREATE_COMPLETE", functions=(USER_FN,))
    plan = plan_alarms([svc], existing, rulebook=default_rulebook(), topic_arn="arn:aws:sns:r:1:t")
    row = plan.set_index("name").loc["UserService-HighLatency"]
    assert row["action"] == "update"
    assert row["differences"] == (
        "statistic Maximum -> Average; period 60 -> 300; evaluation_periods 3 -> 2; "
        "comparison GreaterThanOrEqualToThreshold -> GreaterThanThreshold; "
        f"dimensions FunctionName=somebody-else -> FunctionName={USER_FN}"
    )


def test_dry_run_makes_no_call_and_apply_converges(seeded):
    s, topic, pager = seeded
    rulebook = default_rulebook()
    before = read_alarms(boto3_session=s)
    plan = plan_alarms(_estate(), before, rulebook=rulebook, topic_arn=topic)

    calls = usage(s).total_calls
    dry = apply_alarms(plan, boto3_session=s)
    assert usage(s).total_calls == calls  # not one AWS call, reads included
    assert dry["status"].tolist() == ["planned"] * 7 and not dry["applied"].any()
    assert dry["name"].tolist() == plan["name"].tolist()
    assert read_alarms(boto3_session=s).sort_values("name")["threshold"].tolist() == \
        before.sort_values("name")["threshold"].tolist()

    calls = dict(usage(s).calls)
    done = apply_alarms(plan, apply=True, boto3_session=s)
    assert done["status"].tolist() == ["done"] * 7 and done["applied"].all()
    assert usage(s).calls["cloudwatch.PutMetricAlarm"] - calls.get("cloudwatch.PutMetricAlarm", 0) == 7
    assert usage(s).calls["cloudwatch.DescribeAlarms"] - calls["cloudwatch.DescribeAlarms"] == 1  # the update's read

    after = read_alarms(boto3_session=s).set_index("name")
    assert len(after) == 3 + 7 - 1
    for rec in plan.to_dict("records"):
        a = after.loc[rec["name"]]
        spec = rulebook["alarms"][rec["alarm"]]
        assert (a["metric"], a["statistic"], a["period"], a["evaluation_periods"], a["threshold"],
                a["comparison"], a["dimensions"]) == (
            spec["metric"], spec["statistic"], spec["period"], spec["evaluation_periods"],
            float(spec["threshold"]), spec["comparison"], {"FunctionName": rec["function"]})
        assert topic in a["actions"]
    # the update kept what the runbook does not manage
    raw = client("cloudwatch", s).describe_alarms(AlarmNames=["UserService-HighErrorRate"])["MetricAlarms"][0]
    assert raw["AlarmActions"] == [pager, topic]
    assert raw["OKActions"] == [pager] and raw["AlarmDescription"] == "hand-made"
    assert raw["TreatMissingData"] == "notBreaching"
    assert after.loc["Unrelated-Alarm", "threshold"] == 1.0

    again = plan_alarms(_estate(), read_alarms(boto3_session=s), rulebook=rulebook, topic_arn=topic)
    assert again.empty and list(again.columns) == list(plan.columns)
    assert again.attrs["ok"] == 8


def test_apply_records_a_failed_write_and_goes_on(session):
    svc = Service("user", "UserServiceStack", "CREATE_COMPLETE", functions=(USER_FN,))
    plan = plan_alarms([svc], None, rulebook=default_rulebook(), topic_arn="arn:aws:sns:eu-central-1:1:t")
    cw = client("cloudwatch", session)
    with Stubber(cw) as stub:
        stub.add_client_error("put_metric_alarm", "LimitExceeded", "too many alarms")
        stub.add_response("put_metric_alarm", {})
        result = apply_alarms(plan, apply=True, boto3_session=session)
        stub.assert_no_pending_responses()
    assert result["applied"].tolist() == [False, True]
    assert result["status"].iloc[0].startswith("error: ") and "LimitExceeded" in result["status"].iloc[0]
    assert result["status"].iloc[1] == "done"


def test_topic_by_name_by_arn_and_missing(moto_session):
    s = moto_session
    sns = client("sns", s)
    for i in range(3):
        sns.create_topic(Name=f"noise-{i}")
    arn = sns.create_topic(Name="alerts-topic")["TopicArn"]
    assert resolve_topic_arn("alerts-topic", boto3_session=s) == arn
    calls = usage(s).total_calls
    assert resolve_topic_arn(arn, boto3_session=s) == arn
    assert usage(s).total_calls == calls  # an ARN needs no look-up
    assert resolve_topic_arn("alerts", boto3_session=s) is None  # no prefix match
    assert resolve_topic_arn(None, boto3_session=s) is None


def test_plan_without_topic_says_so():
    svc = Service("user", "UserServiceStack", "CREATE_COMPLETE", functions=(USER_FN,))
    plan = plan_alarms([svc], None, rulebook=default_rulebook(), topic_arn=None)
    assert plan["action"].tolist() == ["create", "create"]
    assert plan["differences"].tolist() == ["missing; no alarm action (SNS topic not found)"] * 2
    assert plan["alarm_actions"].tolist() == [[], []]
    assert plan["topic_arn"].isna().all()
    assert "no SNS topic" in plan.attrs["warnings"][0]
    with pytest.raises(ParameterError, match="not an ARN"):
        plan_alarms([svc], None, rulebook=default_rulebook(), topic_arn="alerts-topic")


def test_missing_alarm_findings():
    existing = pd.DataFrame([{
        "name": "UserService-HighErrorRate", "namespace": "AWS/Lambda", "metric": "Errors",
        "dimensions": {"FunctionName": USER_FN}, "statistic": "Sum", "threshold": 20.0,
        "period": 3600, "evaluation_periods": 1, "comparison": "GreaterThanThreshold",
        "actions": ["arn:aws:sns:r:1:t"],
    }])
    svc = Service("user", "UserServiceStack", "CREATE_COMPLETE", functions=(USER_FN,))
    plan = plan_alarms([svc], existing, rulebook=default_rulebook(), topic_arn="arn:aws:sns:r:1:t")
    findings = check_missing_alarm(plan)
    assert list(findings.columns) == list(SCHEMAS["findings"])
    assert findings[["severity", "check", "service", "resource", "playbook"]].values.tolist() == [
        ["P3", "missing_alarm", "user", USER_FN, ""]] * 2
    assert findings["message"].tolist() == [
        f"UserService-HighErrorRate on {USER_FN} differs from the runbook: threshold 20 -> 10 "
        "(runbook: alarm when Errors (Sum per 1 h) > 10)",
        f"{USER_FN} has no UserService-HighLatency alarm "
        "(runbook: alarm when Duration (Average per 5 min) > 5000 ms for 2 periods in a row)",
    ]
    assert findings["threshold"].tolist() == [10.0, 5000.0]
    empty = check_missing_alarm(plan.iloc[0:0])
    assert empty.empty and empty.dtypes.equals(findings.dtypes)
