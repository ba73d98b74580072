"""GetMetricData batching: calls, price and wall time of N metric queries, batched vs naive.

For N in {10, 100, 500, 501, 1000, 2000} distinct Lambda metric queries against in-process
moto (``mock_aws``), compare:

- ``evilent_nb.metrics.metric_data``: up to 500 queries per GetMetricData call;
- naive GetMetricData: one call per query;
- naive GetMetricStatistics: one call per query.

Calls and the estimated price come from ``evilent_nb.aws.usage(session)``; the largest
number of queries in one call is read by a botocore hook. Only 10 of the N metrics hold
data (3 hourly datapoints each), because moto's GetMetricData time grows with queries x
periods x stored datapoints; the other queries return no datapoints, as a function without
traffic would. "At quota" is the least time the calls would need under AWS's default
quotas (GetMetricData 50 TPS, GetMetricStatistics 400 TPS).

Run: ``.venv/bin/python benchmarks/metric_batching.py``
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from _common import machine, offline_env, table, timer

SIZES = (10, 100, 500, 501, 1000, 2000)
WITH_DATA = 10
HOURS = 3
QUOTA_TPS = {"cloudwatch.GetMetricData": 50, "cloudwatch.GetMetricStatistics": 400}


def fn_name(i: int) -> str:
    return f"BenchFunction{i:04d}"


def seed(cw, end: datetime) -> None:
    """Hourly Invocations of the first WITH_DATA functions: 10 * (i + 1) per hour."""
    data = []
    for i in range(WITH_DATA):
        for h in range(HOURS):
            data.append({
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "FunctionName", "Value": fn_name(i)}],
                "Timestamp": end - timedelta(hours=h + 1) + timedelta(minutes=5),
                "StatisticValues": {"SampleCount": 10.0 * (i + 1), "Sum": 10.0 * (i + 1),
                                    "Minimum": 1.0, "Maximum": 1.0},
                "Unit": "Count",
            })
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def main() -> None:
    offline_env()
    from moto import mock_aws

    from evilent_nb import aws, metrics
    from evilent_nb.timeframe import Window

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    win = Window(end - timedelta(hours=HOURS), end)
    rows = []
    with mock_aws():
        seed(aws.client("cloudwatch", aws.get_session()), end)
        for n in SIZES:
            queries = [metrics.MetricQuery("AWS/Lambda", "Invocations", {"FunctionName": fn_name(i)}, "Sum")
                       for i in range(n)]
            expected_points = min(n, WITH_DATA) * HOURS

            # batched: the package's code path
            session = aws.get_session()
            biggest = [0]

            def watch(params, biggest=biggest, **_):
                biggest[0] = max(biggest[0], len(params.get("MetricDataQueries", [])))

            session.events.register("before-parameter-build.monitoring.GetMetricData", watch)
            aws.client("cloudwatch", session)  # client creation is not part of the pull
            with timer() as t:
                frame = metrics.metric_data(queries, win, period=3600, boto3_session=session)
            assert len(frame) == expected_points, (len(frame), expected_points)
            u = aws.usage(session).to_dict()
            calls = u["calls"]["cloudwatch.GetMetricData"]
            assert calls == math.ceil(n / 500), (n, calls)
            rows.append(["metric_data (batched)", n, calls, biggest[0], u["estimated_cost_usd"],
                         calls / QUOTA_TPS["cloudwatch.GetMetricData"], t[0]])

            # naive GetMetricData: one call per query
            session = aws.get_session()
            cw = aws.client("cloudwatch", session)
            start_t, end_t = win.start, win.end
            points = 0
            with timer() as t:
                for q in queries:
                    out = cw.get_metric_data(MetricDataQueries=[q.to_api("m0", 3600)],
                                             StartTime=start_t, EndTime=end_t)
                    points += sum(len(r["Values"]) for r in out["MetricDataResults"])
            assert points == expected_points, (points, expected_points)
            u = aws.usage(session).to_dict()
            calls = u["calls"]["cloudwatch.GetMetricData"]
            rows.append(["GetMetricData, 1 query per call", n, calls, 1, u["estimated_cost_usd"],
                         calls / QUOTA_TPS["cloudwatch.GetMetricData"], t[0]])

            # naive GetMetricStatistics: one call per metric
            session = aws.get_session()
            cw = aws.client("cloudwatch", session)
            points = 0
            with timer() as t:
                for q in queries:
                    out = cw.get_metric_statistics(
                        Namespace=q.namespace, MetricName=q.metric,
                        Dimensions=[{"Name": k, "Value": v} for k, v in q.dimensions],
                        StartTime=start_t, EndTime=end_t, Period=3600, Statistics=["Sum"])
                    points += len(out["Datapoints"])
            assert points == expected_points, (points, expected_points)
            u = aws.usage(session).to_dict()
            calls = u["calls"]["cloudwatch.GetMetricStatistics"]
            rows.append(["GetMetricStatistics, 1 per call", n, calls, "-", u["estimated_cost_usd"],
                         calls / QUOTA_TPS["cloudwatch.GetMetricStatistics"], t[0]])

    print(f"## GetMetricData batching ({machine()})\n")
    print(f"{WITH_DATA} of the N metrics hold data ({HOURS} hourly points each); window {HOURS} h, "
          "period 3600 s; in-process moto.\n")
    print(table(["approach", "queries N", "API calls", "max queries/call", "est. USD",
                 "s at default quota", "wall s (moto)"], rows))


if __name__ == "__main__":
    main()
