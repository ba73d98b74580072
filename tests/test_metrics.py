"""metrics.py: batched GetMetricData against in-process moto, paging and statuses with Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from conftest import aws_example

from evilent_nb.aws import client, usage
from evilent_nb.exceptions import DataSourceError
from evilent_nb.frames import SCHEMAS
from evilent_nb.metrics import (
    MetricQuery,
    apigw_5xx_rate,
    apigw_metrics,
    error_rate,
    lambda_metrics,
    metric_data,
    pivot_wide,
    rds_metrics,
)
from evilent_nb.timeframe import Window, choose_period

HOUR = timedelta(hours=1)


def _hour_floor(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def _datum(metric: str, dim: str, value: str, ts: datetime, *, count: float, total: float,
           lo: float = 0.0, hi: float = 1.0) -> dict:
    return {
        "MetricName": metric,
        "Dimensions": [{"Name": dim, "Value": value}],
        "Timestamp": ts,
        "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": lo, "Maximum": hi},
    }


# --- queries and presets ------------------------------------------------------------------


def test_metric_query_is_hashable_and_keeps_dimension_order():
    a = MetricQuery("AWS/ApiGateway", "Count", {"ApiName": "UserApi", "Stage": "prod"}, "Sum")
    b = MetricQuery("AWS/ApiGateway", "Count", (("ApiName", "UserApi"), ("Stage", "prod")), "Sum")
    assert a == b and hash(a) == hash(b)
    assert a.dimensions == (("ApiName", "UserApi"), ("Stage", "prod"))
    assert a.resource == "UserApi"
    assert a.display_label == "UserApi Count Sum"
    assert MetricQuery("AWS/RDS", "CPUUtilization", {}, "Average", label="cpu").display_label == "cpu"
    api = a.to_api("m7", 300)
    assert api["Id"] == "m7"
    assert api["MetricStat"]["Period"] == 300
    assert api["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "ApiName", "Value": "UserApi"},
        {"Name": "Stage", "Value": "prod"},
    ]


def test_presets_carry_the_runbook_statistics():
    lam = lambda_metrics(["f1", "f2"])
    assert [(q.metric, q.stat) for q in lam[:5]] == [
        ("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum"),
        ("Duration", "Average"), ("Duration", "Maximum"),
    ]
    assert len(lam) == 10 and {q.namespace for q in lam} == {"AWS/Lambda"}
    assert lam[5].dimensions == (("FunctionName", "f2"),)
    api = apigw_metrics(["UserApi"])
    assert [(q.metric, q.stat) for q in api] == [
        ("Count", "Sum"), ("4XXError", "Sum"), ("5XXError", "Sum"), ("Latency", "Average"),
    ]
    assert api[0].dimensions == (("ApiName", "UserApi"),)
    assert apigw_metrics("UserApi", stage="prod")[0].dimensions == (("ApiName", "UserApi"), ("Stage", "prod"))
    rds = rds_metrics("db-1")  # a single name is one resource, not its characters
    assert [(q.metric, q.stat) for q in rds] == [
        ("DatabaseConnections", "Average"), ("DatabaseConnections", "Maximum"),
        ("CPUUtilization", "Average"), ("FreeStorageSpace", "Minimum"),
    ]
    assert {q.resource for q in rds} == {"db-1"}


# --- in-process moto ----------------------------------------------------------------------


def test_hourly_sums_and_averages_come_back_per_query(moto_session):
    cw = client("cloudwatch", moto_session)
    t0 = _hour_floor(datetime.now(UTC)) - 6 * HOUR
    lam, api = [], []
    for h in range(6):
        at = t0 + h * HOUR + timedelta(minutes=5)
        lam += [
            _datum("Invocations", "FunctionName", "fn-a", at, count=100 + h, total=100.0 + h),
            _datum("Errors", "FunctionName", "fn-a", at, count=100 + h, total=float(3 * h)),
            _datum("Duration", "FunctionName", "fn-a", at, count=4, total=100.0 * (h + 1), lo=1.0, hi=500.0 + h),
            _datum("Invocations", "FunctionName", "fn-b", at, count=10, total=10.0),
        ]
        # Each request is one sample: SampleCount = requests, Sum = 5xx errors.
        api += [
            _datum("Count", "ApiName", "UserApi", at, count=200, total=200.0),
            _datum("5XXError", "ApiName", "UserApi", at, count=200, total=float(10 * h)),
        ]
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=lam)
    cw.put_metric_data(Namespace="AWS/ApiGateway", MetricData=api)

    window = Window(t0, t0 + 6 * HOUR)
    queries = lambda_metrics(["fn-a", "fn-b"]) + apigw_metrics(["UserApi"])
    frame = metric_data(queries, window, period=3600, boto3_session=moto_session)

    assert list(frame.columns) == [*SCHEMAS["metrics"], "function_name", "api_name"]
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame.attrs["incomplete"] == [] and frame.attrs["period"] == 3600
    hours = [t0 + h * HOUR for h in range(6)]

    def series(resource, metric, stat):
        sel = frame[(frame["resource"] == resource) & (frame["metric"] == metric) & (frame["stat"] == stat)]
        assert list(sel["timestamp"]) == [pd.Timestamp(h) for h in hours]
        return list(sel["value"])

    assert series("fn-a", "Invocations", "Sum") == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    assert series("fn-a", "Errors", "Sum") == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    assert series("fn-a", "Duration", "Average") == [25.0, 50.0, 75.0, 100.0, 125.0, 150.0]
    assert series("fn-a", "Duration", "Maximum") == [500.0, 501.0, 502.0, 503.0, 504.0, 505.0]
    assert series("fn-b", "Invocations", "Sum") == [10.0] * 6
    assert series("UserApi", "5XXError", "Sum") == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    fn_b = frame[frame["resource"] == "fn-b"]
    assert set(fn_b["function_name"]) == {"fn-b"} and fn_b["api_name"].isna().all()
    # sorted by namespace, metric, stat, resource, timestamp
    keys = frame[["namespace", "metric", "stat", "resource"]].astype(str).agg("|".join, axis=1)
    assert list(keys) == sorted(keys)

    rates = error_rate(frame)
    a = rates[rates["resource"] == "fn-a"]
    assert list(a["errors"]) == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    assert a["error_rate"].tolist() == pytest.approx([3 * h / (100 + h) for h in range(6)])
    b = rates[rates["resource"] == "fn-b"]
    assert list(b["errors"]) == [0.0] * 6 and list(b["error_rate"]) == [0.0] * 6

    fivexx = apigw_5xx_rate(frame)
    assert list(fivexx.columns) == ["timestamp", "resource", "requests", "errors_5xx", "rate"]
    assert fivexx["rate"].tolist() == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 0.25])

    wide = pivot_wide(frame)
    assert wide.index.names == ["timestamp", "resource"]
    assert wide.loc[(pd.Timestamp(hours[2]), "fn-a"), "Duration:Maximum"] == 502.0
    assert wide.loc[(pd.Timestamp(hours[2]), "fn-a"), "Errors"] == 6.0
    assert np.isnan(wide.loc[(pd.Timestamp(hours[2]), "fn-b"), "Errors"])  # no datapoint


def test_501_queries_go_in_exactly_two_calls(moto_session):
    cw = client("cloudwatch", moto_session)
    t0 = _hour_floor(datetime.now(UTC)) - 2 * HOUR
    # Data for the first query and for the 501st, which must travel in the second call.
    cw.put_metric_data(Namespace="EVILENT/Test", MetricData=[
        _datum("Hits", "Shard", "s0", t0, count=1, total=7.0),
        _datum("Hits", "Shard", "s500", t0 + HOUR, count=1, total=11.0),
    ])
    sizes: list[int] = []

    def count_queries(params, **_):
        sizes.append(len(params["MetricDataQueries"]))

    cw.meta.events.register("provide-client-params.monitoring.GetMetricData", count_queries)
    calls_before = usage(moto_session).calls["cloudwatch.GetMetricData"]
    queries = [MetricQuery("EVILENT/Test", "Hits", {"Shard": f"s{i}"}, "Sum") for i in range(501)]
    frame = metric_data(queries + queries[:3], Window(t0, t0 + 2 * HOUR), period=3600,
                        boto3_session=moto_session)

    assert sizes == [500, 1]  # duplicates sent once
    assert usage(moto_session).calls["cloudwatch.GetMetricData"] - calls_before == 2
    assert frame[["resource", "value"]].values.tolist() == [["s0", 7.0], ["s500", 11.0]]
    assert list(frame["shard"]) == ["s0", "s500"]


def test_no_data_gives_a_typed_empty_frame(moto_session):
    window = Window(_hour_floor(datetime.now(UTC)) - 3 * HOUR, _hour_floor(datetime.now(UTC)))
    frame = metric_data(lambda_metrics(["nothing-here"]), window, period=3600, boto3_session=moto_session)
    assert frame.empty
    assert list(frame.columns) == [*SCHEMAS["metrics"], "function_name"]
    assert dict(frame.dtypes.astype(str)) == {**SCHEMAS["metrics"], "function_name": "string"}
    assert error_rate(frame).empty and list(error_rate(frame).columns)[-1] == "error_rate"
    assert pivot_wide(frame).empty

    calls_before = usage(moto_session).total_calls
    none = metric_data([], window, boto3_session=moto_session)
    assert none.empty and list(none.columns) == list(SCHEMAS["metrics"])
    assert usage(moto_session).total_calls == calls_before  # nothing to ask, no request


# --- botocore Stubber ---------------------------------------------------------------------

WINDOW = Window("2024-09-29T00:00:00Z", "2024-09-30T00:00:00Z")


def _ts(hour: int) -> datetime:
    return datetime(2024, 9, 29, hour, tzinfo=UTC)


def test_partial_data_and_next_token_are_merged_per_query(session):
    cw = client("cloudwatch", session)
    queries = lambda_metrics(["fn-a"])[:2]  # m0 Invocations Sum, m1 Errors Sum
    expected = {
        "MetricDataQueries": ANY,
        "StartTime": WINDOW.start,
        "EndTime": WINDOW.end,
        "ScanBy": "TimestampAscending",
    }
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "m0", "Label": "x", "Timestamps": [_ts(0), _ts(1)], "Values": [5.0, 6.0],
                 "StatusCode": "PartialData"},
                {"Id": "m1", "Label": "y", "Timestamps": [_ts(0)], "Values": [1.0], "StatusCode": "Complete"},
            ],
            "NextToken": "page-2",
            "Messages": [],
        }, expected)
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "m0", "Label": "x", "Timestamps": [_ts(2), _ts(3)], "Values": [7.0, 8.0],
                 "StatusCode": "Complete"},
            ],
            "Messages": [],
        }, {**expected, "NextToken": "page-2"})
        frame = metric_data(queries, WINDOW, period=3600, boto3_session=session)
        stub.assert_no_pending_responses()

    inv = frame[frame["metric"] == "Invocations"]
    assert list(inv["timestamp"]) == [pd.Timestamp(_ts(h)) for h in range(4)]
    assert list(inv["value"]) == [5.0, 6.0, 7.0, 8.0]
    assert frame[frame["metric"] == "Errors"]["value"].tolist() == [1.0]
    assert frame.attrs["incomplete"] == []
    assert usage(session).calls["cloudwatch.GetMetricData"] == 2


def test_internal_error_query_is_reported_and_the_rest_kept(session):
    cw = client("cloudwatch", session)
    queries = [*rds_metrics(["db-1"])[:2]]
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "m0", "Label": "a", "Timestamps": [_ts(5)], "Values": [12.0], "StatusCode": "Complete"},
                {"Id": "m1", "Label": "b", "Timestamps": [], "Values": [], "StatusCode": "InternalError",
                 "Messages": [{"Code": "InternalError", "Value": "try again"}]},
            ],
            "Messages": [{"Code": "MaxMetricsExceeded", "Value": "too many"}],
        })
        frame = metric_data(queries, WINDOW, period=300, boto3_session=session)

    assert frame[["metric", "stat", "value"]].values.tolist() == [["DatabaseConnections", "Average", 12.0]]
    assert frame.attrs["incomplete"] == [{
        "id": "m1", "label": "db-1 DatabaseConnections Maximum", "namespace": "AWS/RDS",
        "metric": "DatabaseConnections", "stat": "Maximum", "resource": "db-1", "status": "InternalError",
    }]
    assert frame.attrs["messages"] == [
        {"id": None, "code": "MaxMetricsExceeded", "value": "too many"},
        {"id": "m1", "code": "InternalError", "value": "try again"},
    ]
    assert "db_instance_identifier" in frame.columns


def test_aws_documented_example_parses_iso_timestamps(session):
    cw = client("cloudwatch", session)
    queries = [MetricQuery("AWS/EC2", name, {"InstanceId": "i-1"}, "Average") for name in
               ("EBSReadOps", "EBSWriteOps", "NetworkIn", "TotalIOPS")]  # the 4th is Id m3
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", aws_example("get_metric_data_example1"))
        frame = metric_data(queries, WINDOW, period=300, boto3_session=session)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2024-09-29T22:10:00Z")
    assert row["metric"] == "TotalIOPS" and row["value"] == 96.85 and row["instance_id"] == "i-1"


def test_default_period_follows_choose_period_and_a_window_spec_works(session):
    cw = client("cloudwatch", session)
    queries = lambda_metrics(["fn-a"])
    captured: list[dict] = []
    cw.meta.events.register("provide-client-params.monitoring.GetMetricData",
                            lambda params, **_: captured.append(params))
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [], "Messages": []})
        frame = metric_data(queries, "24h", boto3_session=session)
    period = captured[0]["MetricDataQueries"][0]["MetricStat"]["Period"]
    assert period == frame.attrs["period"] == choose_period(Window.parse("24h"), len(queries))
    assert [q["Id"] for q in captured[0]["MetricDataQueries"]] == ["m0", "m1", "m2", "m3", "m4"]


def test_a_failed_call_becomes_a_data_source_error(session):
    cw = client("cloudwatch", session)
    with Stubber(cw) as stub:
        stub.add_client_error("get_metric_data", "LimitExceededException", "slow down", 400)
        with pytest.raises(DataSourceError) as err:
            metric_data(lambda_metrics(["fn-a"]), WINDOW, period=60, boto3_session=session)
    assert err.value.source == "cloudwatch.GetMetricData"


# --- client-side helpers on hand-built frames ---------------------------------------------


def _frame(rows):
    from evilent_nb.frames import typed_frame

    return typed_frame(
        [dict(zip(("timestamp", "namespace", "metric", "stat", "resource", "value"), r, strict=True)) for r in rows],
        "metrics",
    )


def test_apigw_5xx_rate_is_nan_without_requests_and_100pct_when_all_fail():
    t1, t2, t3 = (pd.Timestamp(_ts(h)) for h in (1, 2, 3))
    frame = _frame([
        (t1, "AWS/ApiGateway", "Count", "Sum", "api", 40.0),
        (t1, "AWS/ApiGateway", "5XXError", "Sum", "api", 40.0),
        (t2, "AWS/ApiGateway", "Count", "Sum", "api", 0.0),
        (t2, "AWS/ApiGateway", "5XXError", "Sum", "api", 0.0),
        (t3, "AWS/ApiGateway", "Count", "Sum", "api", 50.0),
        (t3, "AWS/ApiGateway", "5XXError", "Average", "api", 0.5),  # not a Sum: ignored
        (t3, "AWS/Lambda", "Errors", "Sum", "fn", 9.0),  # another namespace: ignored
    ])
    out = apigw_5xx_rate(frame)
    assert out["requests"].tolist() == [40.0, 0.0, 50.0]
    assert out["errors_5xx"].tolist() == [40.0, 0.0, 0.0]
    assert out["rate"].iloc[0] == 1.0 and np.isnan(out["rate"].iloc[1]) and out["rate"].iloc[2] == 0.0


def test_pivot_wide_names_single_and_multi_stat_metrics_and_refuses_collisions():
    t1 = pd.Timestamp(_ts(1))
    frame = _frame([
        (t1, "AWS/Lambda", "Errors", "Sum", "fn", 2.0),
        (t1, "AWS/Lambda", "Duration", "Average", "fn", 30.0),
        (t1, "AWS/Lambda", "Duration", "Maximum", "fn", 90.0),
    ])
    wide = pivot_wide(frame)
    assert list(wide.columns) == ["Duration:Average", "Duration:Maximum", "Errors"]
    assert wide.loc[(t1, "fn")].tolist() == [30.0, 90.0, 2.0]
    clash = _frame([
        (t1, "AWS/Lambda", "Errors", "Sum", "fn", 2.0),
        (t1, "Custom/App", "Errors", "Sum", "fn", 5.0),
    ])
    with pytest.raises(ValueError, match="namespace"):
        pivot_wide(clash)


def test_a_dimension_named_like_a_column_does_not_shadow_it(session):
    cw = client("cloudwatch", session)
    q = MetricQuery("Custom/App", "Jobs", {"Queue": "q1", "Resource": "shared"}, "Sum")
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "m0", "Label": "x", "Timestamps": [_ts(1)], "Values": [3.0], "StatusCode": "Complete"},
        ]})
        frame = metric_data([q], WINDOW, period=3600, boto3_session=session)
    assert frame[["resource", "queue", "dim_resource", "value"]].values.tolist() == [["q1", "q1", "shared", 3.0]]


def test_request_times_are_aligned_to_the_period(session) -> None:
    """An unaligned window asks for whole periods, so datapoints start on the hour."""
    from datetime import UTC, datetime

    from botocore.stub import ANY, Stubber

    from evilent_nb import aws
    from evilent_nb.metrics import lambda_metrics, metric_data
    from evilent_nb.timeframe import Window

    cw = aws.client("cloudwatch", session)
    with Stubber(cw) as stub:
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": []},
            {
                "MetricDataQueries": ANY,
                "StartTime": datetime(2026, 11, 27, 9, tzinfo=UTC),
                "EndTime": datetime(2026, 11, 28, 10, tzinfo=UTC),
                "ScanBy": "TimestampAscending",
            },
        )
        metric_data(lambda_metrics("f"), Window("2026-11-27T09:20:05Z", "2026-11-28T09:20:05Z"),
                    period=3600, boto3_session=session)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("age", "given", "sent"),
    [
        (timedelta(days=1), 60, 60),           # 1-minute data is kept 15 days
        (timedelta(days=20), 60, 300),         # past 15 days only 5-minute data exists
        (timedelta(days=20), 600, 600),        # already a multiple of 300
        (timedelta(days=70), 300, 3600),       # past 63 days only hourly data exists
        (timedelta(days=70), 7200, 7200),
        (timedelta(minutes=30), 10, 10),       # high resolution, within its 3 hours
        (timedelta(hours=5), 10, 60),          # high resolution is gone after 3 hours
        (timedelta(days=1), 90, 120),          # AWS takes multiples of 60 only
        (timedelta(days=14, hours=23, minutes=59, seconds=50), 3600, 3600),
        # aligned down to its minute, a start 14d23h59m50s back is 15d20s back: then 300
        (timedelta(days=14, hours=23, minutes=59, seconds=50), 60, 300),
    ],
)
def test_an_explicit_period_follows_the_retention_tiers(session, age, given, sent) -> None:
    """A period AWS keeps no data for returns nothing, silently: it is rounded up instead."""
    now = datetime(2026, 11, 28, 9, 0, 20, tzinfo=UTC)
    window = Window(now - age, now - age + timedelta(minutes=30))
    cw = client("cloudwatch", session)
    periods: list[int] = []
    cw.meta.events.register(
        "before-parameter-build.cloudwatch.GetMetricData",
        lambda params, **_: periods.extend(q["MetricStat"]["Period"] for q in params["MetricDataQueries"]),
    )
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": []})
        frame = metric_data(lambda_metrics("f")[:1], window, period=given, now=now, boto3_session=session)
    assert periods == [sent]
    assert frame.attrs["period"] == sent and frame.attrs["period_requested"] == given


def test_a_non_positive_period_is_refused_before_any_call(session) -> None:
    from evilent_nb.exceptions import ParameterError

    with pytest.raises(ParameterError, match="period"):
        metric_data(lambda_metrics("f"), WINDOW, period=-60, boto3_session=session)
    assert usage(session).total_calls == 0
