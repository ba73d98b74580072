"""cost.py: one paged GetCostAndUsage pull (Stubber), then client-side derivations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber
from conftest import aws_example

from evilent_nb.aws import client, usage
from evilent_nb.cost import (
    anomalies,
    cost_and_usage,
    month_to_date,
    run_rate_forecast,
    week_over_week,
)
from evilent_nb.exceptions import DataSourceError, ParameterError
from evilent_nb.frames import typed_frame
from evilent_nb.timeframe import Window

UTC_TS = "datetime64[ns, UTC]"


def _group(service: str, amount: str) -> dict:
    return {"Keys": [service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def _day(start: str, end: str, groups: list[dict], *, estimated: bool = False) -> dict:
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": estimated}


# --- the pull -----------------------------------------------------------------------------


def test_next_page_token_is_followed_in_exactly_two_requests(session):
    ce = client("ce", session)
    # The window ends inside Nov 3rd, so Nov 3rd is included: End = Nov 4th (exclusive).
    window = Window("2026-11-01T06:00:00Z", "2026-11-03T09:30:00Z")
    request = {
        "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-04"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", {
            "ResultsByTime": [
                _day("2026-11-01", "2026-11-02", [_group("AWS Lambda", "1.2345678901"),
                                                  _group("Amazon RDS", "3.5")]),
                _day("2026-11-02", "2026-11-03", [_group("AWS Lambda", "0.0000000001")]),
            ],
            "NextPageToken": "page-2",
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        }, request)
        stub.add_response("get_cost_and_usage", {
            "ResultsByTime": [
                _day("2026-11-02", "2026-11-03", [_group("Amazon RDS", "3.25")]),
                _day("2026-11-03", "2026-11-04", [_group("AWS Lambda", "7")], estimated=True),
            ],
        }, {**request, "NextPageToken": "page-2"})
        frame = cost_and_usage(window, boto3_session=session)
        stub.assert_no_pending_responses()

    assert usage(session).calls["ce.GetCostAndUsage"] == 2
    assert list(frame.columns) == ["start", "end", "service", "amount", "unit", "estimated"]
    assert dict(frame.dtypes.astype(str)) == {
        "start": UTC_TS, "end": UTC_TS, "service": "string", "amount": "float64",
        "unit": "string", "estimated": "bool",
    }
    assert frame[["service", "amount", "estimated"]].values.tolist() == [
        ["AWS Lambda", 1.2345678901, False],
        ["Amazon RDS", 3.5, False],
        ["AWS Lambda", 1e-10, False],
        ["Amazon RDS", 3.25, False],
        ["AWS Lambda", 7.0, True],
    ]
    assert frame["start"].iloc[0] == pd.Timestamp("2026-11-01T00:00:00Z")
    assert frame["end"].iloc[-1] == pd.Timestamp("2026-11-04T00:00:00Z")
    assert frame.attrs["time_period"] == {"Start": "2026-11-01", "End": "2026-11-04"}



def test_end_is_never_past_tomorrow_even_on_the_last_evening_of_a_month(session):
    """A window may end an hour ahead; at 23:45 on Nov 30 its end (00:30 Dec 1) must not
    become End=Dec 2: AWS refuses an End past the beginning of next month."""
    ce = client("ce", session)
    window = Window("2026-11-01T00:00:00Z", "2026-12-01T00:30:00Z")
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": []}, {
            "TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"},
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        })
        frame = cost_and_usage(window, now="2026-11-30T23:45:00Z", boto3_session=session)
        stub.assert_no_pending_responses()
    assert frame.attrs["time_period"] == {"Start": "2026-11-01", "End": "2026-12-01"}

def test_documented_example_grouped_by_service_and_tag(session):
    ce = client("ce", session)
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", aws_example("get_cost_and_usage"), {
            "TimePeriod": {"Start": "2017-09-01", "End": "2017-10-01"},
            "Granularity": "MONTHLY",
            "Metrics": ["UnblendedCost"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "TAG", "Key": "Environment"}],
        })
        frame = cost_and_usage(Window("2017-09-01T00:00:00Z", "2017-10-01T00:00:00Z"), granularity="monthly",
                               group_by=("SERVICE", "TAG:Environment"), boto3_session=session)
    assert list(frame.columns) == ["start", "end", "service", "environment", "amount", "unit", "estimated"]
    # "Environment$" is untagged (""), "Environment$Dev" is the value Dev
    assert frame[["service", "environment", "amount", "unit"]].values.tolist() == [
        ["Amazon Simple Storage Service", "", 40.3543773134, "USD"],
        ["Amazon Simple Storage Service", "Dev", 0.2682364644, "USD"],
    ]
    assert not frame["estimated"].any()


def test_ungrouped_total_and_rows_outside_the_period_dropped(session):
    ce = client("ce", session)
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", {
            "ResultsByTime": [
                # a stand-in may answer more than was asked: this day is before Start
                {"TimePeriod": {"Start": "2026-10-31", "End": "2026-11-01"}, "Groups": [], "Estimated": False,
                 "Total": {"BlendedCost": {"Amount": "9", "Unit": "USD"}}},
                {"TimePeriod": {"Start": "2026-11-01", "End": "2026-11-02"}, "Groups": [], "Estimated": False,
                 "Total": {"BlendedCost": {"Amount": "4.75", "Unit": "USD"}}},
                {"TimePeriod": {"Start": "2026-11-02", "End": "2026-11-03"}, "Groups": [], "Estimated": True,
                 "Total": {"BlendedCost": {"Amount": "0.5", "Unit": "USD"}}},
            ],
        }, {
            "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-03"},  # midnight end: not widened
            "Granularity": "DAILY",
            "Metrics": ["BlendedCost"],
        })
        frame = cost_and_usage(Window("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z"), group_by=(),
                               metric="BlendedCost", boto3_session=session)
    assert list(frame.columns) == ["start", "end", "amount", "unit", "estimated"]
    assert frame["amount"].tolist() == [4.75, 0.5]
    assert frame["estimated"].tolist() == [False, True]
    # derivations treat an ungrouped frame as one service called "total"
    mtd = month_to_date(frame, now="2026-11-02T12:00:00Z")
    assert mtd.values.tolist() == [["total", 5.25]]


def test_empty_answer_gives_a_typed_frame(session):
    ce = client("ce", session)
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": []})
        frame = cost_and_usage(Window("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), boto3_session=session)
    assert frame.empty and list(frame.columns) == ["start", "end", "service", "amount", "unit", "estimated"]
    assert str(frame["start"].dtype) == UTC_TS
    assert anomalies(frame).empty and week_over_week(frame, now="2026-11-02T00:00:00Z").empty


def test_bad_requests_are_refused_before_any_call(session):
    w = Window("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    with pytest.raises(ParameterError, match="at most 2"):
        cost_and_usage(w, group_by=("SERVICE", "REGION", "TAG:Team"), boto3_session=session)
    with pytest.raises(ParameterError, match="granularity"):
        cost_and_usage(w, granularity="WEEKLY", boto3_session=session)
    with pytest.raises(ParameterError, match="two columns"):
        cost_and_usage(w, group_by=("SERVICE", "TAG:Service"), boto3_session=session)
    assert usage(session).total_calls == 0


def test_throttled_past_retries_is_a_data_source_error(session):
    ce = client("ce", session)
    with Stubber(ce) as stub:
        stub.add_client_error("get_cost_and_usage", "LimitExceededException", "Rate exceeded", 400)
        with pytest.raises(DataSourceError) as err:
            cost_and_usage(Window("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), boto3_session=session)
    assert err.value.source == "ce.GetCostAndUsage"


# --- derivations on a hand-built frame ----------------------------------------------------


def _cost(rows: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    recs = [
        {"start": pd.Timestamp(day, tz="UTC"), "end": pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1),
         "service": svc, "amount": amt, "unit": "USD", "estimated": est}
        for day, svc, amt, est in rows
    ]
    schema = {"start": UTC_TS, "end": UTC_TS, "service": "string", "amount": "float64",
              "unit": "string", "estimated": "bool"}
    return typed_frame(recs, schema)


def _november() -> pd.DataFrame:
    rows: list[tuple[str, str, float, bool]] = [("2026-10-31", "AWS Lambda", 1.0, False),
                                                ("2026-10-31", "Amazon RDS", 3.0, False)]
    for d in range(1, 28):
        day = f"2026-11-{d:02d}"
        rows.append((day, "AWS Lambda", 1.0 if d <= 20 else 2.0, False))
        rows.append((day, "Amazon RDS", 3.0, d >= 26))  # recent days still estimated
    rows += [
        ("2026-11-15", "Amazon S3", 0.7, False),
        ("2026-11-25", "Amazon SNS", 0.25, False),
        ("2026-11-28", "AWS Lambda", 0.5, True),  # today, partial
        ("2026-11-28", "Amazon RDS", 1.0, True),
    ]
    return _cost(rows)


NOW = "2026-11-28T09:00:00Z"


def test_month_to_date_per_service():
    mtd = month_to_date(_november(), now=NOW)
    # Lambda 20*1 + 7*2 + 0.5; RDS 27*3 + 1; October 31st left out
    assert mtd.values.tolist() == [["Amazon RDS", 82.0], ["AWS Lambda", 34.5],
                                   ["Amazon S3", 0.7], ["Amazon SNS", 0.25]]
    assert dict(mtd.dtypes.astype(str)) == {"service": "string", "amount": "float64"}


def test_run_rate_forecast_mid_day_and_at_midnight():
    cost = _november()
    f = run_rate_forecast(cost, now=NOW)
    rate = (7 * 2.0 + 7 * 3.0 + 0.25) / 7  # Nov 21..27, all services
    assert f["month_to_date"] == pytest.approx(117.45)
    assert f["daily_run_rate"] == pytest.approx(rate)
    assert (f["days_elapsed"], f["remaining_days"], f["days_in_month"]) == (28, 2, 30)
    assert f["forecast"] == pytest.approx(117.45 + 2 * rate)
    assert f["month_start"] == pd.Timestamp("2026-11-01T00:00:00Z")
    assert f["month_end"] == pd.Timestamp("2026-12-01T00:00:00Z")

    m = run_rate_forecast(cost, now="2026-11-28T00:00:00Z")  # today has not begun to count
    assert (m["days_elapsed"], m["remaining_days"]) == (27, 3)
    assert m["month_to_date"] == pytest.approx(115.95)
    assert m["forecast"] == pytest.approx(115.95 + 3 * rate)

    # A pull that began on Nov 25th averages over the 3 complete days it covers.
    short = cost[cost["start"] >= pd.Timestamp("2026-11-25", tz="UTC")]
    s = run_rate_forecast(short, now=NOW)
    assert s["daily_run_rate"] == pytest.approx((3 * 2.0 + 3 * 3.0 + 0.25) / 3)


def test_week_over_week():
    wow = week_over_week(_november(), now=NOW)
    assert wow["service"].tolist() == ["AWS Lambda", "Amazon SNS", "Amazon RDS", "Amazon S3"]
    assert wow["this_week"].tolist() == [14.0, 0.25, 21.0, 0.0]
    assert wow["last_week"].tolist() == [7.0, 0.0, 21.0, 0.7]
    assert wow["change_usd"].tolist() == pytest.approx([7.0, 0.25, 0.0, -0.7])
    pct = wow["change_pct"].tolist()
    assert pct[0] == 100.0 and math.isnan(pct[1]) and pct[2] == 0.0 and pct[3] == pytest.approx(-100.0)


def test_anomalies_rule_boundaries_estimated_and_incomplete_days():
    baseline = [2.0, 4.0, 2.0, 4.0]  # mean 3, population std 1 -> mean + 2 sigma = 5
    days = [f"2026-11-{d:02d}" for d in range(1, 7)]
    rows: list[tuple[str, str, float, bool]] = []
    for svc in ("Amazon EC2", "AWS Lambda", "Amazon RDS"):
        rows += [(days[i], svc, v, False) for i, v in enumerate(baseline)]
    rows += [
        (days[4], "Amazon EC2", 5.0, False),   # exactly at the threshold: must not fire
        (days[4], "AWS Lambda", 5.01, False),  # just above: fires
        (days[4], "Amazon RDS", 9.0, True),    # a spike, but still Estimated: skipped
        (days[5], "AWS Lambda", 100.0, False),  # the day "now" is in: incomplete
        # S3: baseline 0.1/0.2 gives mean + 2 sigma = 0.25, but 1.0 is not above min_usd
        *[(days[i], "Amazon S3", v, False) for i, v in enumerate([0.1, 0.2, 0.1, 0.2, 1.0])],
        # SNS: no rows in the baseline (zeros), then 1.5 > max(0, 1.0)
        (days[4], "Amazon SNS", 1.5, False),
        # the first days have no full baseline and are never judged
        (days[0], "Amazon SQS", 50.0, False),
    ]
    cost = _cost(rows)
    found = anomalies(cost, baseline_days=4, sigmas=2.0, min_usd=1.0, now="2026-11-06T12:00:00Z")
    assert list(found.columns) == ["date", "service", "amount", "baseline_mean", "baseline_std", "threshold"]
    assert found[["service", "amount", "baseline_mean", "baseline_std", "threshold"]].values.tolist() == [
        ["AWS Lambda", 5.01, 3.0, 1.0, 5.0],
        ["Amazon SNS", 1.5, 0.0, 0.0, 1.0],
    ]
    assert (found["date"] == pd.Timestamp("2026-11-05", tz="UTC")).all()

    # Without `now`, Nov 6th counts as complete and its 100 USD fires against Nov 2nd..5th.
    later = anomalies(cost, baseline_days=4, sigmas=2.0, min_usd=1.0)
    last = later.iloc[-1]
    base = np.array([4.0, 2.0, 4.0, 5.01])
    assert (last["service"], last["amount"]) == ("AWS Lambda", 100.0)
    assert last["date"] == pd.Timestamp("2026-11-06", tz="UTC")
    assert last["baseline_mean"] == pytest.approx(base.mean())
    assert last["threshold"] == pytest.approx(base.mean() + 2 * base.std())
    assert len(later) == 3


def test_default_anomaly_rule_fourteen_days_three_sigma():
    days = pd.date_range("2026-11-01", periods=16, freq="D", tz="UTC").strftime("%Y-%m-%d")
    flat = [(d, "AWS Lambda", 2.0, False) for d in days[:14]]
    cost = _cost([*flat, (days[14], "AWS Lambda", 2.0, False), (days[15], "AWS Lambda", 2.5, False)])
    # flat baseline: std 0, threshold max(2.0, 1.0) = 2.0; 2.0 is not above it, 2.5 is
    found = anomalies(cost)
    assert found[["service", "amount", "threshold"]].values.tolist() == [["AWS Lambda", 2.5, 2.0]]
    assert found["date"].iloc[0] == pd.Timestamp("2026-11-16", tz="UTC")
