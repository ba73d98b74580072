"""Maintenance plans: retention and stale streams, dry by default, exact when applied."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from evilent_nb.aws import client, usage
from evilent_nb.exceptions import ParameterError
from evilent_nb.frames import SCHEMAS
from evilent_nb.inventory import log_groups as read_groups
from evilent_nb.maintenance import (
    RESULT_SCHEMA,
    apply_retention,
    apply_stale_stream_deletion,
    plan_retention,
    plan_stale_stream_deletion,
    run_plan,
    stale_streams,
)
from evilent_nb.timeframe import utcnow

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-central-1"


def _ms(ts) -> int:
    return int(ts.timestamp() * 1000)


# Retention ----------------------------------------------------------------------------


@pytest.fixture
def groups(moto_session):
    logs = client("logs", moto_session)
    logs.create_log_group(logGroupName="/aws/lambda/never")  # never expires
    logs.create_log_group(logGroupName="/aws/lambda/week")
    logs.put_retention_policy(logGroupName="/aws/lambda/week", retentionInDays=7)
    logs.create_log_group(logGroupName="/aws/lambda/month")
    logs.put_retention_policy(logGroupName="/aws/lambda/month", retentionInDays=30)
    return moto_session


def test_retention_plan_picks_never_and_7_only(groups):
    plan = plan_retention(read_groups(boto3_session=groups), days=30)
    assert list(plan.columns[:2]) == ["action", "target"]
    assert plan[["action", "target", "log_group", "new_retention_days"]].values.tolist() == [
        ["set_retention", "/aws/lambda/never", "/aws/lambda/never", 30],
        ["set_retention", "/aws/lambda/week", "/aws/lambda/week", 30],
    ]
    assert pd.isna(plan["current_retention_days"].iloc[0])
    assert plan["current_retention_days"].iloc[1] == 7
    # another target retention changes the plan
    assert plan_retention(read_groups(boto3_session=groups), days=7)["target"].tolist() == [
        "/aws/lambda/month", "/aws/lambda/never"]


def test_retention_dry_run_then_apply(groups):
    s = groups
    plan = plan_retention(read_groups(boto3_session=s), days=30)

    calls = usage(s).total_calls
    dry = apply_retention(plan, boto3_session=s)
    assert usage(s).total_calls == calls
    assert list(dry.columns) == [*RESULT_SCHEMA, "log_group"]
    assert dry["status"].tolist() == ["planned", "planned"] and not dry["applied"].any()
    assert read_groups(boto3_session=s).set_index("name")["retention_days"].isna().sum() == 1

    done = apply_retention(plan, apply=True, boto3_session=s)
    assert done["status"].tolist() == ["done", "done"] and done["applied"].all()
    assert usage(s).calls["logs.PutRetentionPolicy"] == 2 + 2  # two from the fixture's seeding
    after = read_groups(boto3_session=s).set_index("name")["retention_days"]
    assert after.to_dict() == {"/aws/lambda/month": 30, "/aws/lambda/never": 30, "/aws/lambda/week": 30}
    assert plan_retention(read_groups(boto3_session=s), days=30).empty


def test_retention_refuses_a_value_aws_rejects():
    with pytest.raises(ParameterError, match="31"):
        plan_retention(pd.DataFrame({"name": ["g"], "retention_days": [7]}), days=31)


def test_empty_plan_gives_a_typed_empty_result():
    plan = plan_retention(pd.DataFrame({"name": ["g"], "retention_days": [30]}), days=30)
    result = apply_retention(plan, apply=True)  # nothing to do: no session needed
    assert result.empty and list(result.columns) == [*RESULT_SCHEMA, "log_group"]
    assert str(result.dtypes["applied"]) == "bool"


def test_run_plan_records_errors_and_goes_on():
    from evilent_nb.exceptions import DataSourceError

    plan = pd.DataFrame({"action": ["delete"] * 3, "target": ["a", "b", "c"]})

    def write(rec):
        if rec["target"] == "b":
            raise DataSourceError("logs.DeleteLogStream", "ServiceUnavailable: try later")

    result = run_plan(plan, write, apply=True)
    assert result["applied"].tolist() == [True, False, True]
    assert result["status"].tolist() == [
        "done", "error: logs.DeleteLogStream: ServiceUnavailable: try later", "done"]
    assert run_plan(plan, lambda rec: 1 / 0, apply=False)["status"].tolist() == ["planned"] * 3


# Stale streams ------------------------------------------------------------------------


@pytest.fixture
def streams(moto_session):
    """Two groups: old streams seeded in moto's backend, fresh ones through the API."""
    from moto.logs.models import LogEvent, logs_backends

    s = moto_session
    now = utcnow()
    logs = client("logs", s)
    backend = logs_backends[ACCOUNT][REGION]
    g1, g2 = "/aws/lambda/UserServiceStack-Fn", "/aws/lambda/ProductServiceStack-Fn"
    for g in (g1, g2):
        logs.create_log_group(logGroupName=g)

    def old(group: str, name: str, age: timedelta) -> None:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        stream = backend.groups[group].streams[name]
        ts = _ms(now - age)
        stream.events.append(LogEvent(ts, {"timestamp": ts - 1000, "message": "START old"}))
        stream.events.append(LogEvent(ts, {"timestamp": ts, "message": "END old"}))
        stream.last_ingestion_time = (now - age).replace(tzinfo=None)

    old(g1, "2024/01/01/[$LATEST]old40", timedelta(days=40))
    old(g1, "2024/01/06/[$LATEST]old35", timedelta(days=35))
    old(g1, "edge30", timedelta(days=30))  # exactly 30 days: not older than 30
    old(g2, "2024/01/01/[$LATEST]old31", timedelta(days=31))
    # an empty stream created long ago counts from its creation
    logs.create_log_stream(logGroupName=g1, logStreamName="empty-old")
    backend.groups[g1].streams["empty-old"].creation_time = (now - timedelta(days=50)).replace(tzinfo=None)
    logs.create_log_stream(logGroupName=g1, logStreamName="empty-new")
    for g in (g1, g2):
        logs.create_log_stream(logGroupName=g, logStreamName="fresh")
        logs.put_log_events(logGroupName=g, logStreamName="fresh",
                            logEvents=[{"timestamp": _ms(now - timedelta(hours=1)), "message": "ok"}])
    return s, now, g1, g2


def test_stale_streams_are_exactly_the_old_ones(streams):
    s, now, g1, g2 = streams
    stale = stale_streams([g1, g2, "/aws/lambda/never-ran"], stale_days=30, now=now, boto3_session=s)
    assert list(stale.columns[:4]) == ["log_group", "name", "last_event", "age_days"]
    assert stale[["log_group", "name", "age_days"]].values.tolist() == [
        [g2, "2024/01/01/[$LATEST]old31", 31.0],
        [g1, "empty-old", 50.0],
        [g1, "2024/01/01/[$LATEST]old40", 40.0],
        [g1, "2024/01/06/[$LATEST]old35", 35.0],
    ]
    assert pd.isna(stale["last_event"].iloc[1])
    assert stale["last_event"].iloc[2] == pd.Timestamp(now - timedelta(days=40))
    assert str(stale["last_event"].dtype) == SCHEMAS["log_streams"]["last_event"]
    # a frame of log groups works as well as names
    frame = pd.DataFrame({"name": [g2]})
    assert stale_streams(frame, stale_days=30, now=now, boto3_session=s)["name"].tolist() == [
        "2024/01/01/[$LATEST]old31"]
    # a longer horizon keeps only the oldest
    assert stale_streams([g1], stale_days=45, now=now, boto3_session=s)["name"].tolist() == ["empty-old"]


def test_stale_deletion_dry_run_then_apply(streams):
    s, now, g1, g2 = streams
    plan = plan_stale_stream_deletion(stale_streams([g1, g2], stale_days=30, now=now, boto3_session=s))
    assert plan["action"].tolist() == ["delete"] * 4
    assert plan["target"].iloc[0] == f"{g2}:2024/01/01/[$LATEST]old31"

    logs = client("logs", s)

    def names(group: str) -> list[str]:
        return sorted(x["logStreamName"] for x in logs.describe_log_streams(logGroupName=group)["logStreams"])

    before = {g: names(g) for g in (g1, g2)}
    calls = usage(s).total_calls
    dry = apply_stale_stream_deletion(plan, boto3_session=s)
    assert usage(s).total_calls == calls
    assert dry["status"].tolist() == ["planned"] * 4
    assert {g: names(g) for g in (g1, g2)} == before

    done = apply_stale_stream_deletion(plan, apply=True, boto3_session=s)
    assert done["applied"].all() and list(done.columns) == [*RESULT_SCHEMA, "log_group", "log_stream"]
    assert usage(s).calls["logs.DeleteLogStream"] == 4
    assert names(g1) == ["edge30", "empty-new", "fresh"]
    assert names(g2) == ["fresh"]
    assert stale_streams([g1, g2], stale_days=30, now=now, boto3_session=s).empty

    # deleting again: each row fails on its own, none is reported done
    again = apply_stale_stream_deletion(plan.iloc[:1], apply=True, boto3_session=s)
    assert not again["applied"].any() and again["status"].iloc[0].startswith("error: ")


def test_stale_streams_needs_an_aware_now():
    from datetime import datetime

    with pytest.raises(ParameterError):
        stale_streams(["g"], now=datetime(2026, 1, 1))  # noqa: DTZ001
