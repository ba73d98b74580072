"""Rules: each check fires and stays quiet around its thresholds, exactly at them included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evilent_nb.config import default_rulebook
from evilent_nb.estate import Estate, Service
from evilent_nb.frames import SCHEMAS, typed_frame
from evilent_nb.rules import (
    at_or_above,
    check_alarm_state,
    check_api_health,
    check_apigw_5xx_rate,
    check_backup_objects_age,
    check_cost_anomaly,
    check_db_backup_age,
    check_db_status,
    check_deprecated_runtime,
    check_lambda_duration,
    check_lambda_errors,
    check_lambda_invocations,
    check_lambda_throttles,
    check_log_errors,
    check_log_retention,
    check_monthly_cost,
    check_stack_status,
    check_stale_log_streams,
    check_unused_policy,
    cost_findings,
    data_unavailable,
    findings_frame,
    health_findings,
    maintenance_findings,
    status_of,
)

FN = "UserServiceStack-ServiceUserServiceFunction"
FN2 = "ProductServiceStack-ServiceProductServiceFunction"
API = "UserServiceApi"
T0 = pd.Timestamp("2026-11-28T00:00:00Z")
RB = default_rulebook()

ESTATE = Estate(
    region="eu-central-1",
    services=[
        Service("user", "UserServiceStack", "UPDATE_COMPLETE", functions=(FN,), apis=(API,),
                health_url="http://127.0.0.1:9000/user/health", log_groups=(f"/aws/lambda/{FN}",)),
        Service("product", "ProductServiceStack", "UPDATE_COMPLETE", functions=(FN2,), apis=("ProductServiceApi",),
                health_url="http://127.0.0.1:9000/product/health", log_groups=(f"/aws/lambda/{FN2}",)),
    ],
    db_instances=["evilent-user-service-db"],
    backup_bucket="evilent-backups",
    backup_prefixes=["user-service/", "product-service/"],
)


def metrics(series: dict[tuple[str, str, str, str], list[float]], *, step: str = "1h") -> pd.DataFrame:
    """{(namespace, metric, stat, resource): values from T0, one per step} -> a metrics frame."""
    rows = []
    for (ns, metric, stat, resource), values in series.items():
        dim = "function_name" if ns == "AWS/Lambda" else "api_name"
        for i, v in enumerate(values):
            rows.append({"timestamp": T0 + i * pd.Timedelta(step), "namespace": ns, "metric": metric,
                         "stat": stat, "label": f"{resource} {metric} {stat}", "resource": resource,
                         "value": v, dim: resource})
    return typed_frame(rows, "metrics", extra={"function_name": "string", "api_name": "string"})


def lam(metric: str, stat: str, values: list[float], fn: str = FN, step: str = "1h") -> pd.DataFrame:
    return metrics({("AWS/Lambda", metric, stat, fn): values}, step=step)


# -- the findings frame -------------------------------------------------------------------


def test_findings_frame_sorts_by_severity_then_time_and_is_typed():
    rows = [
        {"severity": "P3", "check": "a", "at": T0},
        {"severity": "P0", "check": "b", "at": T0 + pd.Timedelta("2h")},
        {"severity": "P1", "check": "c"},
        {"severity": "P0", "check": "d", "at": T0 + pd.Timedelta("1h")},
        {"severity": "P1", "check": "e", "at": T0},
    ]
    f = findings_frame(rows)
    assert f["check"].tolist() == ["d", "b", "e", "c", "a"]
    assert list(f.columns) == list(SCHEMAS["findings"])
    assert f.dtypes.astype(str).tolist() == list(SCHEMAS["findings"].values())
    assert findings_frame([]).dtypes.astype(str).tolist() == list(SCHEMAS["findings"].values())


def test_findings_frame_rejects_unknown_severity():
    with pytest.raises(ValueError, match="P0-P3"):
        findings_frame([{"severity": "P5", "check": "x"}])


@pytest.mark.parametrize(
    ("severities", "status", "p1_or_above"),
    [([], "OK", 0), (["P3"], "P3", 0), (["P3", "P2"], "P2", 0), (["P2", "P1", "P3"], "P1", 1),
     (["P3", "P0", "P1"], "P0", 2)],
)
def test_status_of_and_at_or_above(severities, status, p1_or_above):
    f = findings_frame([{"severity": s, "check": "x"} for s in severities])
    assert status_of(f) == status
    assert len(at_or_above(f, "P1")) == p1_or_above


def test_data_unavailable_is_p2_naming_the_source():
    f = data_unavailable("cloudwatch.GetMetricData", RuntimeError("Rate exceeded"))
    row = f.iloc[0]
    assert (row.severity, row.check, row.resource) == ("P2", "data_unavailable", "cloudwatch.GetMetricData")
    assert row.message == "cloudwatch.GetMetricData could not be read (Rate exceeded); the report went on without it"
    assert status_of(f) == "P2"


# -- hourly Lambda checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("worst", "severity", "threshold"),
    [(10, None, None), (11, "P2", 10.0), (100, "P2", 10.0), (101, "P1", 100.0), (150, "P1", 100.0)],
)
def test_lambda_errors_thresholds(worst, severity, threshold):
    f = check_lambda_errors(lam("Errors", "Sum", [0, 3, worst, 5]), ESTATE, RB)
    if severity is None:
        assert f.empty
        return
    assert len(f) == 1
    row = f.iloc[0]
    assert (row.severity, row.check, row.service, row.resource) == (severity, "lambda_errors", "user", FN)
    assert (row.value, row.threshold, row["at"]) == (worst, threshold, T0 + pd.Timedelta("2h"))
    assert row.playbook == "high-error-rate"


def test_lambda_errors_message_and_worst_hour():
    # two hours over 100: the worst (150 at 03:00) is the one reported, once
    f = check_lambda_errors(lam("Errors", "Sum", [0, 120, 20, 150, 150, 4]), ESTATE, RB)
    assert len(f) == 1
    assert f.at[0, "at"] == T0 + pd.Timedelta("3h")
    assert f.at[0, "message"] == "150 errors in the hour from 2026-11-28 03:00 UTC (critical above 100/h)"


def test_lambda_errors_buckets_finer_datapoints_into_hours():
    # 12 five-minute datapoints of 9 errors = 108 in the hour from 00:00: P1, though no datapoint is > 100
    f = check_lambda_errors(lam("Errors", "Sum", [9] * 12 + [1] * 12, step="5min"), ESTATE, RB)
    assert f[["severity", "value", "at"]].values.tolist() == [["P1", 108.0, T0]]


def test_lambda_errors_coarser_datapoints_are_judged_per_hour_on_average():
    # one 6-hour datapoint of 606 errors = 101/h on average -> P1
    f = check_lambda_errors(lam("Errors", "Sum", [606, 60], step="6h"), ESTATE, RB)
    assert f[["severity", "value"]].values.tolist() == [["P1", 101.0]]
    assert f.at[0, "message"].startswith("101 errors per hour on average over the 6 hours from 2026-11-28 00:00 UTC")


def test_lambda_errors_one_finding_per_function_and_rulebook_override():
    m = pd.concat([lam("Errors", "Sum", [50, 12]), lam("Errors", "Sum", [11, 5], fn=FN2)], ignore_index=True)
    f = check_lambda_errors(m, ESTATE, RB)
    assert sorted(zip(f.resource, f.service, f.value, strict=True)) == [(FN2, "product", 11.0), (FN, "user", 50.0)]
    rb = {**RB, "lambda_errors": {**RB["lambda_errors"], "p2_above": 20}}
    assert check_lambda_errors(m, ESTATE, rb).resource.tolist() == [FN]


@pytest.mark.parametrize(("worst", "fires"), [(4999.9, False), (5000, False), (5000.5, True), (7200, True)])
def test_lambda_duration_threshold(worst, fires):
    f = check_lambda_duration(lam("Duration", "Average", [300, worst, 800]), ESTATE, RB)
    assert len(f) == int(fires)
    if fires:
        row = f.iloc[0]
        assert (row.severity, row.value, row.threshold, row.playbook) == ("P2", worst, 5000.0, "high-latency")
        assert row["at"] == T0 + pd.Timedelta("1h")


def test_lambda_duration_averages_finer_datapoints():
    # 5-min averages of 4000 and 6200: the hour averages 5100 ms -> fires; Maximum stats are ignored
    m = pd.concat([lam("Duration", "Average", [4000] * 6 + [6200] * 6, step="5min"),
                   lam("Duration", "Maximum", [29000] * 12, step="5min")], ignore_index=True)
    f = check_lambda_duration(m, ESTATE, RB)
    assert f[["value", "at"]].values.tolist() == [[5100.0, T0]]
    assert f.at[0, "message"] == "average duration 5,100 ms in the hour from 2026-11-28 00:00 UTC (investigate above 5,000 ms)"


@pytest.mark.parametrize(("worst", "fires"), [(9999, False), (10000, False), (10001, True)])
def test_lambda_invocations_threshold(worst, fires):
    f = check_lambda_invocations(lam("Invocations", "Sum", [100, worst]), ESTATE, RB)
    assert len(f) == int(fires)
    if fires:
        assert f[["severity", "check", "value", "threshold"]].values.tolist() == [
            ["P3", "lambda_invocations", 10001.0, 10000.0]]
        assert f.at[0, "message"] == "10,001 invocations in the hour from 2026-11-28 01:00 UTC (investigate above 10,000/h)"


@pytest.mark.parametrize(("values", "total"), [([0, 0, 0], None), ([0, 2, 5, 1], 8.0), ([0, 1], 1.0)])
def test_lambda_throttles_over_the_window(values, total):
    f = check_lambda_throttles(lam("Throttles", "Sum", values), ESTATE, RB)
    if total is None:
        assert f.empty
        return
    worst_hour = T0 + pd.Timedelta(hours=values.index(max(values)))
    assert f[["severity", "value", "threshold", "at"]].values.tolist() == [["P3", total, 0.0, worst_hour]]


# -- API Gateway 5xx rate -----------------------------------------------------------------


def apigw(counts: list[float], errors: list[float], step: str = "1h") -> pd.DataFrame:
    return metrics({("AWS/ApiGateway", "Count", "Sum", API): counts,
                    ("AWS/ApiGateway", "5XXError", "Sum", API): errors}, step=step)


@pytest.mark.parametrize(
    ("count", "errors", "severity", "threshold", "playbook"),
    [
        (200, 10, None, None, None),            # 5 % exactly: quiet
        (200, 11, "P2", 0.05, "high-error-rate"),  # 5.5 %
        (200, 20, "P2", 0.05, "high-error-rate"),  # 10 % exactly: still P2
        (200, 21, "P1", 0.10, "high-error-rate"),  # 10.5 %
        (200, 199, "P1", 0.10, "high-error-rate"),
        (200, 200, "P0", 1.0, "api-down"),       # 100 %
    ],
)
def test_apigw_5xx_rate_thresholds(count, errors, severity, threshold, playbook):
    f = check_apigw_5xx_rate(apigw([100, count, 100], [0, errors, 1]), ESTATE, RB)
    if severity is None:
        assert f.empty
        return
    row = f.iloc[0]
    assert (row.severity, row.service, row.resource, row.threshold, row.playbook) == (
        severity, "user", API, threshold, playbook)
    assert row.value == pytest.approx(errors / count)
    assert row["at"] == T0 + pd.Timedelta("1h")


def test_apigw_5xx_rate_worst_hour_message_and_min_requests():
    # hour 0: 1 request, 1 error (100 %) is ignored when min_requests is 10; hour 2 (30 %) is worst
    f = check_apigw_5xx_rate(apigw([1, 100, 40], [1, 6, 12]), ESTATE,
                             {**RB, "apigw_5xx_rate": {**RB["apigw_5xx_rate"], "min_requests": 10}})
    assert f[["severity", "value", "at"]].values.tolist() == [["P1", 0.3, T0 + pd.Timedelta("2h")]]
    assert f.at[0, "message"] == (
        "30 % of 40 requests failed with 5xx in the hour from 2026-11-28 02:00 UTC (incident above 10 %)")
    # with the default min_requests (1) the single failed request is a 100 % hour
    assert check_apigw_5xx_rate(apigw([1, 100, 40], [1, 6, 12]), ESTATE, RB).severity.tolist() == ["P0"]


def test_apigw_5xx_rate_sums_five_minute_datapoints_into_hours():
    # 12 x (10 requests, 1 error) = 10 % exactly: P2, not P1; one more error makes it 10.8 % -> P1
    assert check_apigw_5xx_rate(apigw([10] * 12, [1] * 12, step="5min"), ESTATE, RB).severity.tolist() == ["P2"]
    f = check_apigw_5xx_rate(apigw([10] * 12, [1] * 11 + [2], step="5min"), ESTATE, RB)
    assert f.severity.tolist() == ["P1"] and f.value[0] == pytest.approx(13 / 120)


def test_apigw_5xx_no_requests_no_finding():
    assert check_apigw_5xx_rate(apigw([0, 0], [0, 0]), ESTATE, RB).empty


# -- probes, stacks, logs, DB, alarms -----------------------------------------------------------


def test_api_health_maps_probe_url_to_the_service_api():
    probes = typed_frame([
        {"url": "http://127.0.0.1:9000/user/health", "status_code": 503, "ok": False, "latency_ms": 12.0},
        {"url": "http://127.0.0.1:9000/product/health", "status_code": 200, "ok": True, "latency_ms": 8.0},
        {"url": "http://127.0.0.1:9000/other", "status_code": None, "ok": False, "error": "connection refused"},
        {"url": "http://127.0.0.1:9000/x/health", "status_code": 204, "ok": True},
        {"url": "http://127.0.0.1:9000/y/health", "status_code": 302, "ok": False},
    ], "probes")
    f = check_api_health(probes, ESTATE, at=T0)
    assert f[["severity", "check", "service", "resource", "value"]].astype(object).where(f.notna(), None).values.tolist() == [
        ["P0", "api_health", "user", API, 503.0],
        ["P0", "api_health", "", "http://127.0.0.1:9000/other", None],
        ["P0", "api_health", "", "http://127.0.0.1:9000/y/health", 302.0],
    ]
    assert f.message.tolist()[0] == "GET http://127.0.0.1:9000/user/health answered HTTP 503; a healthy service answers 2xx"
    assert "did not answer (connection refused)" in f.message.tolist()[1]
    assert set(f.playbook) == {"api-down"} and (f["at"] == T0).all()


@pytest.mark.parametrize(
    ("status", "severity"),
    [("CREATE_COMPLETE", None), ("UPDATE_COMPLETE", None), ("UPDATE_FAILED", "P1"), ("CREATE_FAILED", "P1"),
     ("ROLLBACK_FAILED", "P1"), ("UPDATE_ROLLBACK_FAILED", "P1"), ("UPDATE_ROLLBACK_COMPLETE", "P2"),
     ("ROLLBACK_COMPLETE", "P2"), ("UPDATE_ROLLBACK_IN_PROGRESS", "P2"), ("UPDATE_IN_PROGRESS", "P3"),
     ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "P3"), ("DELETE_COMPLETE", None)],
)
def test_stack_status(status, severity):
    stacks = typed_frame([{"name": "UserServiceStack", "status": status, "created": T0,
                           "last_updated": T0 + pd.Timedelta("1h"), "status_reason": "Resource update cancelled"}],
                         "stacks")
    f = check_stack_status(stacks, ESTATE, RB)
    assert f.severity.tolist() == ([severity] if severity else [])
    if severity:
        assert (f.service[0], f.resource[0], f["at"][0]) == ("user", "UserServiceStack", T0 + pd.Timedelta("1h"))
        assert f.message[0].startswith(f"stack UserServiceStack is {status} since 2026-11-28 01:00 UTC")


@pytest.mark.parametrize(("count", "fires"), [(0, False), (1, True), (42, True)])
def test_log_errors(count, fires):
    counts = typed_frame([{"log_group": f"/aws/lambda/{FN}", "count": count,
                           "first_seen": T0 if count else None, "last_seen": T0 + pd.Timedelta("5h") if count else None}],
                         {"log_group": "string", "count": "int64", "first_seen": "datetime64[ns, UTC]",
                          "last_seen": "datetime64[ns, UTC]"})
    f = check_log_errors(counts, ESTATE, RB)
    assert len(f) == int(fires)
    if fires:
        assert f[["severity", "service", "value", "threshold", "at"]].values.tolist() == [
            ["P3", "user", float(count), 0.0, T0]]
        assert f.message[0] == (f"{count} ERROR lines in the window (first 2026-11-28 00:00 UTC, "
                                "last 2026-11-28 05:00 UTC)")


def test_db_status_flags_unavailable_and_missing_instances():
    dbs = typed_frame([{"id": "evilent-user-service-db", "status": "available"},
                       {"id": "other-db", "status": "stopped"}], "db_instances")
    assert check_db_status(dbs, ["evilent-user-service-db"]).empty
    f = check_db_status(dbs, ["evilent-user-service-db", "evilent-orders-db"])
    assert f[["severity", "resource", "message", "playbook"]].values.tolist() == [
        ["P1", "evilent-orders-db", "DB instance evilent-orders-db was not found", "db-connection"]]
    f = check_db_status(dbs, None)
    assert f[["severity", "resource", "message"]].values.tolist() == [
        ["P1", "other-db", "DB instance other-db is stopped, not available"]]
    rebooting = typed_frame([{"id": "evilent-user-service-db", "status": "rebooting"}], "db_instances")
    assert check_db_status(rebooting, ["evilent-user-service-db"]).severity.tolist() == ["P1"]


def test_alarm_state():
    alarms = typed_frame([
        {"name": "UserService-HighErrorRate", "state": "ALARM", "metric": "Errors", "threshold": 10.0,
         "dimensions": {"FunctionName": FN}, "state_updated": T0, "state_reason": "Threshold Crossed"},
        {"name": "UserService-HighLatency", "state": "OK", "metric": "Duration", "threshold": 5000.0,
         "dimensions": {"FunctionName": FN}, "state_updated": T0},
        {"name": "Billing", "state": "INSUFFICIENT_DATA", "metric": "EstimatedCharges", "dimensions": {}},
    ], "alarms")
    f = check_alarm_state(alarms, ESTATE, RB)
    assert f[["severity", "service", "resource", "threshold", "at", "playbook"]].values.tolist() == [
        ["P2", "user", "UserService-HighErrorRate", 10.0, T0, "high-error-rate"]]
    assert f.message[0] == "alarm UserService-HighErrorRate is in ALARM since 2026-11-28 00:00 UTC: Threshold Crossed"


# -- cost ---------------------------------------------------------------------------------------


def daily_cost(per_day: dict[str, list[float]], start: str, estimated_last: bool = False) -> pd.DataFrame:
    rows = []
    for service, amounts in per_day.items():
        for i, amount in enumerate(amounts):
            s = pd.Timestamp(start) + pd.Timedelta(days=i)
            rows.append({"start": s, "end": s + pd.Timedelta(days=1), "service": service, "amount": amount,
                         "unit": "USD", "estimated": estimated_last and i == len(amounts) - 1})
    return typed_frame(rows, "cost", extra={"service": "string"})


@pytest.mark.parametrize(
    ("daily", "severity", "value"),
    [
        (3.0, None, None),          # 10 days x 3 = 30 MTD; forecast 30 + 3 x 20 = 90: quiet
        (10.0 / 3, None, None),     # forecast exactly 100: quiet
        (3.5, "P3", 105.0),         # forecast 35 + 3.5 x 20 = 105
        (10.5, "P3", 105.0),        # month-to-date itself over budget
    ],
)
def test_monthly_cost(daily, severity, value):
    # November 2026: 10 complete days, now = Nov 11 00:00 (days_elapsed 10, 20 remaining)
    cost = daily_cost({"AWS Lambda": [daily] * 10}, "2026-11-01")
    f = check_monthly_cost(cost, now="2026-11-11T00:00:00Z", rulebook=RB)
    if severity is None:
        assert f.empty
        return
    assert f[["severity", "check", "resource", "threshold"]].values.tolist() == [["P3", "monthly_cost", "total", 100.0]]
    assert f.value[0] == pytest.approx(value)
    assert "November 2026" in f.message[0] and "100 USD monthly budget" in f.message[0]


def test_monthly_cost_budget_parameter_overrides_rulebook():
    cost = daily_cost({"AWS Lambda": [3.0] * 10}, "2026-11-01")
    f = check_monthly_cost(cost, now="2026-11-11T00:00:00Z", rulebook=RB, monthly_budget_usd=80)
    assert f[["value", "threshold"]].values.tolist() == [[90.0, 80.0]]


def test_cost_anomaly_one_finding_per_service_at_its_worst_day():
    base = [1.0, 1.2] * 7  # 14 baseline days: mean 1.1, std 0.1 -> limit 1.4
    cost = daily_cost({"AmazonCloudWatch": base + [1.4, 9.0, 12.0, 1.1], "AWS Lambda": [0.2] * 18}, "2026-11-01")
    f = check_cost_anomaly(cost, RB, now="2026-11-20T00:00:00Z")
    assert f[["severity", "check", "resource", "value", "at"]].values.tolist() == [
        ["P3", "cost_anomaly", "AmazonCloudWatch", 12.0, pd.Timestamp("2026-11-17T00:00:00Z")]]
    # the threshold is that day's: its baseline (Nov 3-16) holds the 9 USD day
    baseline = np.array(base[2:] + [1.4, 9.0])
    assert f.threshold[0] == pytest.approx(baseline.mean() + 3 * baseline.std())
    assert f.message[0].startswith("AmazonCloudWatch cost 12 USD on 2026-11-17, 7.1 times its usual 1.69 USD/day "
                                   "over the previous 14 days (anomaly threshold ")
    assert f.message[0].endswith("; 1 more anomalous day")
    both = cost_findings(cost, now="2026-11-20T00:00:00Z", rulebook=RB)
    assert both.check.tolist() == ["cost_anomaly"]  # MTD 42.5 USD, forecast 42.5 + 26.9 / 7 x 11 = 84.8: no monthly_cost


# -- maintenance ----------------------------------------------------------------------------------


def test_log_retention():
    groups = typed_frame([{"name": f"/aws/lambda/{FN}", "retention_days": 30},
                          {"name": f"/aws/lambda/{FN2}", "retention_days": None},
                          {"name": "/aws/other", "retention_days": 90}], "log_groups")
    f = check_log_retention(groups, RB, 30, estate=ESTATE)
    got = f[["resource", "service", "value", "threshold"]].astype(object).where(f[["resource", "service", "value", "threshold"]].notna(), None)
    assert sorted(got.values.tolist()) == [["/aws/lambda/" + FN2, "product", None, 30.0], ["/aws/other", "", 90.0, 30.0]]
    assert set(f.message) == {
        f"log group /aws/lambda/{FN2} keeps its logs forever (never expire); the runbook wants 30 days",
        "log group /aws/other keeps its logs for 90 days; the runbook wants 30 days"}
    assert check_log_retention(groups, RB, 90).resource.tolist() == [f"/aws/lambda/{FN2}", f"/aws/lambda/{FN}"]


def test_stale_log_streams_counts_per_group_and_respects_the_boundary():
    now = pd.Timestamp("2026-11-28T00:00:00Z")
    g = f"/aws/lambda/{FN}"
    streams = typed_frame([
        {"log_group": g, "name": "a", "last_event": now - pd.Timedelta(days=45)},
        {"log_group": g, "name": "b", "last_event": now - pd.Timedelta(days=31)},
        {"log_group": g, "name": "c", "last_event": now - pd.Timedelta(days=30)},  # exactly 30: not stale
        {"log_group": g, "name": "d", "last_event": None, "created": now - pd.Timedelta(days=60)},
        {"log_group": "/aws/x", "name": "e", "last_event": now - pd.Timedelta(days=2)},
    ], "log_streams")
    f = check_stale_log_streams(streams, RB, 30, now=now, estate=ESTATE)
    assert f[["severity", "service", "resource", "value", "threshold", "at"]].values.tolist() == [
        ["P3", "user", g, 3.0, 30.0, now - pd.Timedelta(days=60)]]
    assert f.message[0].startswith(f"3 log streams in {g} with no event for more than 30 days")


@pytest.mark.parametrize(("count", "fires"), [(0, True), (1, False), (None, False)])
def test_unused_policy(count, fires):
    pol = typed_frame([{"name": "old-policy", "attachment_count": count, "updated": T0}], "policies")
    f = check_unused_policy(pol)
    assert f[["severity", "check", "service", "resource"]].values.tolist() == (
        [["P3", "unused_policy", "", "old-policy"]] if fires else [])


@pytest.mark.parametrize(
    ("age_days", "status", "fires", "value"),
    [(5, "available", False, None), (31, "available", False, None), (31.5, "available", True, 31.5),
     (2, "creating", True, None), (None, None, True, None)],
)
def test_db_backup_age(age_days, status, fires, value):
    now = pd.Timestamp("2026-11-28T00:00:00Z")
    rows = [{"id": "s1", "db": "evilent-user-service-db", "created": now - pd.Timedelta(days=40), "status": "available"}]
    if age_days is not None:
        rows.append({"id": "s2", "db": "evilent-user-service-db", "created": now - pd.Timedelta(days=age_days),
                     "status": status})
    else:
        rows = []
    f = check_db_backup_age(typed_frame(rows, "db_snapshots"), ["evilent-user-service-db"], now, RB)
    assert len(f) == int(fires)
    if fires:
        assert (f.severity[0], f.resource[0], f.threshold[0]) == ("P2", "evilent-user-service-db", 31.0)
        if value is not None:
            assert f.value[0] == value
        elif age_days == 2:  # the fresh one is still being created: the 40-day one counts
            assert f.value[0] == 40.0
        else:
            assert math.isnan(f.value[0]) and f.message[0] == "DB instance evilent-user-service-db has no available snapshot"


def test_backup_objects_age_per_prefix():
    now = pd.Timestamp("2026-11-28T00:00:00Z")
    objs = typed_frame([
        {"bucket": "evilent-backups", "key": "user-service/backup-20261120.sql", "last_modified": now - pd.Timedelta(days=8)},
        {"bucket": "evilent-backups", "key": "product-service/", "last_modified": now},
        {"bucket": "evilent-backups", "key": "product-service/backup-20261001.tar.gz", "last_modified": now - pd.Timedelta(days=58)},
    ], "backup_objects")
    f = check_backup_objects_age(objs, bucket="evilent-backups", prefixes=["user-service/", "product-service/", "x/"],
                                 now=now, rulebook=RB)
    assert f[["severity", "check", "resource"]].values.tolist() == [
        ["P2", "db_backup_age", "s3://evilent-backups/product-service/"],
        ["P2", "db_backup_age", "s3://evilent-backups/x/"]]
    assert f.value[0] == 58.0


def test_deprecated_runtime():
    fns = typed_frame([{"name": FN, "runtime": "nodejs16.x", "last_modified": T0},
                       {"name": FN2, "runtime": "nodejs20.x"}, {"name": "img", "runtime": None}], "functions")
    f = check_deprecated_runtime(fns, RB, estate=ESTATE)
    assert f[["severity", "service", "resource", "at"]].values.tolist() == [["P3", "user", FN, T0]]


# -- aggregators --------------------------------------------------------------------------------


def test_health_findings_combines_checks_and_skips_missing_sources():
    m = pd.concat([lam("Errors", "Sum", [150, 2]), apigw([100, 100], [100, 3])], ignore_index=True)
    probes = typed_frame([{"url": "http://127.0.0.1:9000/user/health", "status_code": 502}], "probes")
    dbs = typed_frame([{"id": "evilent-user-service-db", "status": "available"}], "db_instances")
    f = health_findings(estate=ESTATE, metrics=m, probes=probes, db_instances=dbs, stacks=None,
                        error_counts=None, alarms=None, rulebook=RB, now=T0 + pd.Timedelta("2h"))
    assert f[["severity", "check"]].values.tolist() == [["P0", "apigw_5xx_rate"], ["P0", "api_health"],
                                                        ["P1", "lambda_errors"]]
    assert status_of(f) == "P0"
    quiet = health_findings(estate=ESTATE, metrics=lam("Errors", "Sum", [1, 2]), rulebook=RB)
    assert status_of(quiet) == "OK"


def test_maintenance_findings_takes_missing_alarm_findings_as_given():
    now = pd.Timestamp("2026-11-28T00:00:00Z")
    missing = findings_frame([{"severity": "P3", "check": "missing_alarm", "resource": FN, "service": "user"}])
    f = maintenance_findings(
        log_groups=typed_frame([{"name": f"/aws/lambda/{FN}", "retention_days": None}], "log_groups"),
        policies=typed_frame([{"name": "p", "attachment_count": 0}], "policies"),
        snapshots=typed_frame([], "db_snapshots"),
        functions=typed_frame([{"name": FN, "runtime": "python3.12"}], "functions"),
        alarm_plan=missing, estate=ESTATE, rulebook=RB, now=now,
    )
    assert sorted(f.check.tolist()) == ["db_backup_age", "log_retention", "missing_alarm", "unused_policy"]
    assert f.severity.tolist()[0] == "P2"


def test_log_errors_says_when_counting_stopped() -> None:
    import pandas as pd

    from evilent_nb.rules import check_log_errors

    counts = pd.DataFrame({
        "log_group": ["/aws/lambda/a", "/aws/lambda/b"],
        "count": [10_000, 12],
        "first_seen": pd.to_datetime(["2026-11-28T01:00:00Z", "2026-11-28T02:00:00Z"]),
        "last_seen": pd.to_datetime(["2026-11-28T03:00:00Z", "2026-11-28T04:00:00Z"]),
    })
    counts.attrs["capped"] = ["/aws/lambda/a"]
    msgs = dict(zip(*check_log_errors(counts)[["resource", "message"]].values.T, strict=True))
    assert msgs["/aws/lambda/a"].startswith("at least 10,000 ERROR lines")
    assert msgs["/aws/lambda/b"].startswith("12 ERROR lines in the window")
