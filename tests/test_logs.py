"""logs.py: FilterLogEvents against moto, Insights with Stubber (and moto), error signatures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from conftest import aws_example

from evilent_nb.aws import client, usage
from evilent_nb.exceptions import DataSourceError, InsightsQueryError, ParameterError
from evilent_nb.frames import SCHEMAS, typed_frame
from evilent_nb.logs import (
    ERROR_COUNTS_SCHEMA,
    error_counts,
    error_signatures,
    parse_line,
    read_events,
    run_insights,
    signature_of,
    start_query,
    top_errors_query,
    wait_query,
)
from evilent_nb.timeframe import Window, utcnow

GROUP = "/aws/lambda/UserServiceStack-ServiceUserServiceFunction"
STREAM_A = "2026/11/27/[$LATEST]0a1b2c3d4e5f"
STREAM_B = "2026/11/27/[$LATEST]9f8e7d6c5b4a"


def _rid(i: int, stream: str = "a") -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stream}-{i}"))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _seed(session: Any) -> dict[str, Any]:
    """13,500 events over 100 minutes in two streams; returns what was put."""
    logs = client("logs", session)
    base = utcnow().replace(second=0) - timedelta(hours=3)
    base_ms = int(base.timestamp() * 1000)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_group(logGroupName="/aws/lambda/QuietFunction")
    events: dict[str, list[dict[str, Any]]] = {STREAM_A: [], STREAM_B: []}
    for i in range(12_000):  # Node runtime format, one event every 500 ms
        ts = base_ms + i * 500
        if i % 100 == 0:
            msg = f"START RequestId: {_rid(i)} Version: $LATEST\n"
        elif i % 10 == 0:
            msg = f"{_iso(ts)}\t{_rid(i)}\tERROR\tError: connect ETIMEDOUT 10.0.{i % 7}.{i % 250}:5432\n"
        else:
            msg = f"{_iso(ts)}\t{_rid(i)}\tINFO\tprocessed order {i}\n"
        events[STREAM_A].append({"timestamp": ts, "message": msg})
    for i in range(1_500):  # Python runtime format, one event every second, offset 250 ms
        ts = base_ms + 250 + i * 1000
        level = "ERROR" if i % 5 == 0 else "WARNING"
        events[STREAM_B].append(
            {"timestamp": ts, "message": f"[{level}]\t{_iso(ts)}\t{_rid(i, 'b')}\tslow query took {i} ms\n"}
        )
    for stream, evs in events.items():
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        for k in range(0, len(evs), 5_000):
            resp = logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=evs[k:k + 5_000])
            assert not resp.get("rejectedLogEventsInfo"), resp
    return {"base": base, "base_ms": base_ms, "events": events}


@pytest.fixture
def seeded(moto_session):
    return moto_session, _seed(moto_session)


# --- read_events against moto ------------------------------------------------------
def test_read_events_pages_past_10000(seeded) -> None:
    session, seed = seeded
    usage(session).reset()
    win = Window(seed["base"], seed["base"] + timedelta(hours=2))
    df = read_events(GROUP, window=win, boto3_session=session)
    assert len(df) == 13_500
    assert usage(session).calls["logs.FilterLogEvents"] == 2  # 10,000 + 3,500
    assert list(df.columns) == list(SCHEMAS["log_events"])
    assert (df.dtypes == pd.Series(SCHEMAS["log_events"])).all()
    assert df["timestamp"].is_monotonic_increasing
    assert df["event_id"].is_unique
    assert (df["log_stream"] == STREAM_A).sum() == 12_000
    # streams are interleaved: B's first event (base+250 ms) is second overall
    assert df["log_stream"].iloc[:3].tolist() == [STREAM_A, STREAM_B, STREAM_A]
    assert df["level"].value_counts(dropna=False).to_dict() == {
        "INFO": 10_800, "WARN": 1_200, "ERROR": 1_080 + 300, pd.NA: 120,
    }
    start_rows = df[df["message"].str.startswith("START")]
    assert len(start_rows) == 120 and start_rows["level"].isna().all()
    assert start_rows["request_id"].iloc[1] == _rid(100)
    row = df[(df["log_stream"] == STREAM_A)].iloc[10]  # i = 10: an ERROR line
    assert (row["level"], row["request_id"]) == ("ERROR", _rid(10))
    assert row["message"].endswith("10.0.3.10:5432")  # trailing newline dropped
    assert row["timestamp"] == pd.Timestamp(seed["base_ms"] + 5_000, unit="ms", tz="UTC")
    assert df[df["log_stream"] == STREAM_B]["request_id"].iloc[7] == _rid(7, "b")
    assert df["ingestion_time"].notna().all()


def test_read_events_pattern_and_window_edges(seeded) -> None:
    session, seed = seeded
    win = Window(seed["base"], seed["base"] + timedelta(hours=2))
    errors = read_events(GROUP, window=win, pattern="ERROR", boto3_session=session)
    assert len(errors) == 1_380
    assert set(errors["level"]) == {"ERROR"}
    base_ms = seed["base_ms"]
    edges = Window(
        pd.Timestamp(base_ms + 1_000, unit="ms", tz="UTC"), pd.Timestamp(base_ms + 6_000, unit="ms", tz="UTC")
    )
    df = read_events(GROUP, window=edges, boto3_session=session)
    # A at 1000, 1500, ..., 5500 (6000 excluded); B at 1250, 2250, ..., 5250
    assert len(df) == 10 + 5
    assert df["timestamp"].iloc[0] == edges.start
    assert df["timestamp"].iloc[-1] == pd.Timestamp(base_ms + 5_500, unit="ms", tz="UTC")


def test_read_events_limit_stops_early(seeded) -> None:
    session, seed = seeded
    usage(session).reset()
    win = Window(seed["base"], seed["base"] + timedelta(hours=2))
    df = read_events(GROUP, window=win, limit=25, boto3_session=session)
    assert usage(session).calls["logs.FilterLogEvents"] == 1
    assert len(df) == 25
    all_ts = sorted(e["timestamp"] for evs in seed["events"].values() for e in evs)
    assert df["timestamp"].iloc[-1] == pd.Timestamp(all_ts[24], unit="ms", tz="UTC")
    with pytest.raises(ParameterError):
        read_events(GROUP, window=win, limit=0, boto3_session=session)


def test_read_events_missing_group_is_empty_typed(moto_session) -> None:
    df = read_events("/aws/lambda/NoSuchFunction", window="1h", boto3_session=moto_session)
    assert df.empty and df.attrs["missing"] is True
    assert list(df.columns) == list(SCHEMAS["log_events"])
    assert (df.dtypes == pd.Series(SCHEMAS["log_events"])).all()


def test_error_counts_with_zero_and_missing_group(seeded) -> None:
    session, seed = seeded
    win = Window(seed["base"], seed["base"] + timedelta(hours=2))
    groups = [GROUP, "/aws/lambda/QuietFunction", "/aws/lambda/NeverInvoked"]
    df = error_counts(groups, window=win, boto3_session=session)
    assert list(df.columns) == list(ERROR_COUNTS_SCHEMA)
    assert str(df["count"].dtype) == "int64"
    assert df["log_group"].tolist() == groups
    assert df["count"].tolist() == [1_380, 0, 0]
    base_ms = seed["base_ms"]
    assert df["first_seen"].iloc[0] == pd.Timestamp(base_ms + 250, unit="ms", tz="UTC")  # B, i=0
    assert df["last_seen"].iloc[0] == pd.Timestamp(base_ms + 11_990 * 500, unit="ms", tz="UTC")
    assert df["first_seen"].iloc[1:].isna().all() and df["last_seen"].iloc[1:].isna().all()
    assert df.attrs["missing"] == ["/aws/lambda/NeverInvoked"]


# --- read_events with Stubber ------------------------------------------------------
STUB_WINDOW = Window(datetime(2024, 4, 8, 9, tzinfo=UTC), datetime(2024, 4, 8, 10, tzinfo=UTC))


def test_empty_page_with_next_token_does_not_stop(session) -> None:
    logs = client("logs", session)
    start_ms = int(STUB_WINDOW.start.timestamp() * 1000)
    end_ms = int(STUB_WINDOW.end.timestamp() * 1000) - 1
    base = {"logGroupName": GROUP, "startTime": start_ms, "endTime": end_ms,
            "filterPattern": "MESSAGE", "interleaved": True}
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": [], "nextToken": "t1"}, base)
        stub.add_response("filter_log_events", {"events": [], "nextToken": "t2"}, {**base, "nextToken": "t1"})
        stub.add_response("filter_log_events", aws_example("filter_log_events"), {**base, "nextToken": "t2"})
        df = read_events(GROUP, window=STUB_WINDOW, pattern="MESSAGE", boto3_session=session)
        stub.assert_no_pending_responses()
    assert df["message"].tolist() == ["Test MESSAGE1", "Test MESSAGE2"]
    assert df["timestamp"].tolist() == [pd.Timestamp(1712567843827, unit="ms", tz="UTC"),
                                        pd.Timestamp(1712568068991, unit="ms", tz="UTC")]
    assert df["log_stream"].iloc[1] == "2024/05/09/[$LATEST]abc1024"
    assert df["level"].isna().all() and (df["log_group"] == GROUP).all()


def test_read_events_throttled_is_a_data_source_error(session) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded")
        with pytest.raises(DataSourceError, match="logs.FilterLogEvents"):
            read_events(GROUP, window=STUB_WINDOW, boto3_session=session)



def _error_page(first_ms: int, n: int, token: str | None) -> dict[str, Any]:
    events = [{"logStreamName": STREAM_A, "timestamp": first_ms + i, "message": f"ERROR boom {i}",
               "ingestionTime": first_ms + i + 5, "eventId": f"e{first_ms + i}"} for i in range(n)]
    return {"events": events, "searchedLogStreams": [], **({"nextToken": token} if token else {})}


def test_error_counts_stops_at_the_cap_and_says_so(session, caplog) -> None:
    """A busy group is not read to the end: 2 pages for a cap of 5, count marked as capped."""
    logs = client("logs", session)
    start_ms = int(STUB_WINDOW.start.timestamp() * 1000)
    base = {"logGroupName": GROUP, "startTime": start_ms, "endTime": start_ms + 3_600_000 - 1,
            "filterPattern": "ERROR", "interleaved": True, "limit": 5}
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", _error_page(start_ms + 100, 3, "t1"), base)
        stub.add_response("filter_log_events", _error_page(start_ms + 200, 4, "t2"), {**base, "nextToken": "t1"})
        stub.add_response("filter_log_events", _error_page(start_ms + 300, 1, None), {"logGroupName": "/q",
                          "startTime": start_ms, "endTime": start_ms + 3_600_000 - 1,
                          "filterPattern": "ERROR", "interleaved": True, "limit": 5})
        df = error_counts([GROUP, "/q"], window=STUB_WINDOW, max_events=5, boto3_session=session)
        stub.assert_no_pending_responses()  # page t2 and beyond were never asked for
    assert df["count"].tolist() == [5, 1]
    assert df.attrs["capped"] == [GROUP]
    assert df["first_seen"].iloc[0] == pd.Timestamp(start_ms + 100, unit="ms", tz="UTC")
    assert df["last_seen"].iloc[0] == pd.Timestamp(start_ms + 201, unit="ms", tz="UTC")  # 5th counted
    assert "lower bound" in caplog.text
    assert usage(session).calls["logs.FilterLogEvents"] == 3


def test_error_counts_default_cap_bounds_the_pages(session) -> None:
    from evilent_nb.logs import ERROR_COUNT_CAP

    logs = client("logs", session)
    start_ms = int(STUB_WINDOW.start.timestamp() * 1000)
    with Stubber(logs) as stub:
        for i in range(ERROR_COUNT_CAP // 2_500):  # pages of 2,500 (the 1 MB page limit)
            stub.add_response("filter_log_events", _error_page(start_ms + i * 2_500, 2_500, f"t{i}"))
        df = error_counts([GROUP], window=STUB_WINDOW, boto3_session=session)
        stub.assert_no_pending_responses()
    assert df["count"].tolist() == [ERROR_COUNT_CAP] and df.attrs["capped"] == [GROUP]


# --- line parsing --------------------------------------------------------------------
RID = "8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize(
    ("message", "level", "request_id"),
    [
        (f"2026-11-27T10:00:00.000Z\t{RID}\tERROR\tboom", "ERROR", RID),
        (f"2026-11-27T10:00:00.000Z\t{RID}\tWARN\tslow", "WARN", RID),
        (f"[ERROR]\t2026-11-27T10:00:00.000Z\t{RID}\tboom", "ERROR", RID),
        (f"[INFO]\t2026-11-27T10:00:00.000Z\t{RID}\tFound credentials", "INFO", RID),
        ("[WARNING] disk almost full", "WARN", None),
        ("ERROR: database unreachable", "ERROR", None),
        ("FATAL out of memory", "FATAL", None),
        ("2026-11-27 10:00:00,123 DEBUG cache miss", "DEBUG", None),
        (f"START RequestId: {RID} Version: $LATEST", None, RID),
        (f"REPORT RequestId: {RID.upper()}\tDuration: 102.25 ms", None, RID),
        ("2026-11-27T10:00:00.000Z\tundefined\tERROR\tUncaught Exception", "ERROR", None),
        (f'{{"timestamp":"2026-11-27T10:00:00Z","level":"ERROR","requestId":"{RID}","message":"x"}}',
         "ERROR", RID),
        ("INFORMATION is not a level", None, None),
        ("Error: lower-case words are not levels", None, None),
    ],
)
def test_parse_line(message: str, level: str | None, request_id: str | None) -> None:
    parsed = parse_line(message)
    assert (parsed.level, parsed.request_id) == (level, request_id)


# --- error signatures ----------------------------------------------------------------
T0 = datetime(2026, 11, 27, 10, tzinfo=UTC)


def _ev(minutes: float, message: str, group: str = GROUP) -> dict[str, Any]:
    return {"timestamp": T0 + timedelta(minutes=minutes), "log_group": group, "message": message}


def _node(minutes: float, rid: str, text: str, group: str = GROUP) -> dict[str, Any]:
    ts = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return _ev(minutes, f"{ts}\t{rid}\tERROR\t{text}", group)


def _signature_events() -> pd.DataFrame:
    other = "/aws/lambda/ProductServiceStack-ServiceProductServiceFunction"
    stack = "\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)"
    rows = [
        _node(5, _rid(1), "Error: connect ETIMEDOUT 10.0.1.23:5432" + stack),
        _node(1, _rid(2), "Error: connect ETIMEDOUT 10.0.2.7:5433" + stack),
        _node(30, _rid(3), "Error: connect ETIMEDOUT 172.31.5.200:6432" + stack, other),
        _node(42, _rid(4), 'Invoke Error \t{"errorType":"Error","errorMessage":"connect ETIMEDOUT '
                           '10.0.9.9:5432","stack":["Error: connect ETIMEDOUT 10.0.9.9:5432"]}'),
        _node(12, _rid(5), "TypeError: Cannot read properties of undefined (reading 'email')"),
        _node(50, _rid(6), "TypeError: Cannot read properties of undefined (reading 'email')"),
        _ev(20, f"[ERROR]\t2026-11-27T10:20:00.000Z\t{_rid(7)}\tValueError: order 12345 has no items\n"
                "Traceback (most recent call last):\n  File \"/var/task/app.py\", line 10"),
        _ev(25, f"2026-11-27T10:25:00.000Z {_rid(8)} Task timed out after 3.00 seconds"),
    ]
    return typed_frame(rows, "log_events")


def test_error_signatures_collapse_and_separate() -> None:
    sig = error_signatures(_signature_events())
    assert list(sig.columns) == list(SCHEMAS["error_signatures"])
    assert (sig.dtypes == pd.Series(SCHEMAS["error_signatures"])).all()
    assert sig["signature"].tolist() == [
        "Error: connect ETIMEDOUT <ip>",
        "TypeError: Cannot read properties of undefined (reading '<str>')",
        "ValueError: order <n> has no items",
        "Task timed out after <n> seconds",
    ]
    assert sig["count"].tolist() == [4, 2, 1, 1]
    db = sig.iloc[0]
    assert db["first_seen"] == T0 + timedelta(minutes=1)
    assert db["last_seen"] == T0 + timedelta(minutes=42)
    assert db["example"].startswith("2026-11-27T10:01:00.000Z\t")  # the earliest raw message
    assert db["example"].endswith("(node:net:1555:16)") and "10.0.2.7:5433" in db["example"]
    assert db["log_group"] == GROUP  # 3 of 4 are there
    assert sig.iloc[1]["first_seen"] == T0 + timedelta(minutes=12)
    assert sig.iloc[1]["last_seen"] == T0 + timedelta(minutes=50)
    assert sig.iloc[2]["example"].count("\n") == 2  # first lines of a multi-line message
    top = error_signatures(_signature_events(), top=2)
    assert top["count"].tolist() == [4, 2]


def test_error_signatures_empty_is_typed() -> None:
    sig = error_signatures(typed_frame([], "log_events"))
    assert sig.empty and list(sig.columns) == list(SCHEMAS["error_signatures"])
    assert (sig.dtypes == pd.Series(SCHEMAS["error_signatures"])).all()


@pytest.mark.parametrize(
    ("message", "signature"),
    [
        (f"ERROR user {RID} at 0x7f3a2b1c failed for bob@example.com from 2001:db8:0:0:0:0:2:1",
         "user <uuid> at <hex> failed for [REDACTED:email] from <ip>"),
        ('ERROR: duplicate key value violates unique constraint "users_email_key" at 2026-11-27 10:00:01',
         'duplicate key value violates unique constraint "<str>" at <ts>'),
        ("ERROR checksum deadbeef01 mismatch Root=1-5759e988-bd862e3fe1be46a994272793",
         "checksum <hex> mismatch Root=<trace>"),
        ("ERROR login failed password=hunter2 took 1234ms", "login failed password=[REDACTED:password] took <n>ms"),
        ("ERROR S3 upload to ipv4 host failed", "S3 upload to ipv4 host failed"),
    ],
)
def test_signature_normalisation(message: str, signature: str) -> None:
    assert signature_of(message) == signature


# --- Logs Insights with Stubber ------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _result(rows: list[dict[str, str]], status: str = "Complete", stats: tuple[float, ...] = (0, 0, 0),
            **extra: Any) -> dict[str, Any]:
    return {
        # AWS leaves a field out of a row when it has no value
        "results": [[{"field": k, "value": v} for k, v in row.items() if v is not None] for row in rows],
        "statistics": dict(zip(("recordsMatched", "recordsScanned", "bytesScanned"), stats, strict=True)),
        "status": status,
        **extra,
    }


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def test_insights_stats_results_are_typed(session) -> None:
    logs = client("logs", session)
    query = top_errors_query()
    assert query == ("fields @timestamp, @message | filter @message like /ERROR/ "
                     "| stats count() by @message | sort count desc | limit 10")
    rows = [{"@message": "ERROR db timeout", "count()": "42"}, {"@message": "ERROR 42", "count()": "7"}]
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"}, {
            "logGroupNames": [GROUP], "startTime": _epoch(STUB_WINDOW.start),
            "endTime": _epoch(STUB_WINDOW.end), "queryString": query, "limit": 10_000})
        stub.add_response("get_query_results", _result(rows, stats=(49, 5000, 123456)), {"queryId": "q1"})
        df = run_insights(query, [GROUP], window=STUB_WINDOW, boto3_session=session)
        stub.assert_no_pending_responses()
    assert df.columns.tolist() == ["@message", "count()"]
    assert str(df["count()"].dtype) == "Int64" and df["count()"].tolist() == [42, 7]
    assert str(df["@message"].dtype) == "string" and df["@message"].iloc[1] == "ERROR 42"
    assert df.attrs["statistics"] == {"recordsMatched": 49, "recordsScanned": 5000, "bytesScanned": 123456}
    assert df.attrs["queries"] == 1 and df.attrs["truncated"] is False


def test_insights_raw_results_parse_timestamp(session) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", aws_example("get_query_results"))
        df = run_insights("fields @timestamp, @message, @logStream", GROUP, window=STUB_WINDOW,
                          boto3_session=session)
    assert df.columns.tolist() == ["@timestamp", "@message", "@logStream", "@ptr"]
    assert str(df["@timestamp"].dtype) == "datetime64[ns, UTC]"
    assert df["@timestamp"].iloc[0] == pd.Timestamp("2024-05-19T06:10:35.743Z")
    assert df["@message"].tolist() == ["Test BENCHMARK 3", "Test BENCHMARK 2", "Test BENCHMARK 1"]
    assert df.attrs["statistics"] == {"recordsMatched": 3.0, "recordsScanned": 3.0, "bytesScanned": 141.0}


def test_insights_numbers_floats_and_bins(session) -> None:
    logs = client("logs", session)
    rows = [{"bin(5m)": "2024-05-19 06:05:00.000", "avg(@duration)": "12.5", "n": "3"},
            {"bin(5m)": "2024-05-19 06:10:00.000", "avg(@duration)": "7", "n": None}]
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", _result(rows))
        df = run_insights("stats avg(@duration), count(*) as n by bin(5m)", [GROUP], window=STUB_WINDOW,
                          boto3_session=session)
    assert df["bin(5m)"].tolist() == [pd.Timestamp("2024-05-19T06:05Z"), pd.Timestamp("2024-05-19T06:10Z")]
    assert str(df["avg(@duration)"].dtype) == "float64" and df["avg(@duration)"].tolist() == [12.5, 7.0]
    assert str(df["n"].dtype) == "Int64" and df["n"].iloc[0] == 3 and df["n"].isna().iloc[1]


def test_insights_empty_result_is_typed(session) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", _result([]))
        df = run_insights("fields @timestamp, @message | filter @message like /nothing/", [GROUP],
                          window=STUB_WINDOW, boto3_session=session)
    assert df.empty and df.columns.tolist() == ["@timestamp", "@message", "@ptr"]
    assert str(df["@timestamp"].dtype) == "datetime64[ns, UTC]" and str(df["@message"].dtype) == "string"


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout", "Unknown"])
def test_wait_query_final_statuses_raise(session, status: str) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_response("get_query_results", _result([], status="Running"))
        stub.add_response("get_query_results", _result([], status=status))
        with pytest.raises(InsightsQueryError) as err:
            wait_query("q-9", query="fields @message", poll_s=0.5, clock=FakeClock(), boto3_session=session)
    assert err.value.status == status and err.value.query_id == "q-9"
    assert status in str(err.value) and "fields @message" in str(err.value) and "q-9" in str(err.value)


def test_wait_query_backs_off_until_complete(session) -> None:
    logs = client("logs", session)
    clock = FakeClock()
    with Stubber(logs) as stub:
        stub.add_response("get_query_results", _result([], status="Scheduled"))
        stub.add_response("get_query_results", _result([], status="Running"))
        stub.add_response("get_query_results", _result([{"@message": "a"}], nextToken="n1"))
        stub.add_response("get_query_results", _result([{"@message": "b"}]), {"queryId": "q1", "nextToken": "n1"})
        resp = wait_query("q1", poll_s=1.0, clock=clock, boto3_session=session)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 1.5]
    assert [r[0]["value"] for r in resp["results"]] == ["a", "b"]  # nextToken followed
    assert "nextToken" not in resp


@pytest.mark.parametrize("stop", ["ok", "client-error", "not-implemented"])
def test_wait_query_deadline_stops_query(session, stop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = client("logs", session)
    clock = FakeClock()
    calls: list[str] = []
    # parameter-build runs for every call; the Stubber answers at before-call and stops that chain
    logs.meta.events.register_first("before-parameter-build.cloudwatch-logs",
                                    lambda model, **_: calls.append(model.name))

    def not_implemented(**_: Any) -> None:  # what in-process moto does
        calls.append("StopQuery")
        raise NotImplementedError("The stop_query action has not been implemented")

    if stop == "not-implemented":
        monkeypatch.setattr(logs, "stop_query", not_implemented)
    with Stubber(logs) as stub:
        for _ in range(5):  # polls at t = 0, 1, 2.5, 4.5, 6
            stub.add_response("get_query_results", _result([], status="Running"), {"queryId": "q7"})
        if stop == "ok":
            stub.add_response("stop_query", {"success": True}, {"queryId": "q7"})
        elif stop == "client-error":
            stub.add_client_error("stop_query", "InvalidParameterException", "query already ended")
        with pytest.raises(InsightsQueryError) as err:
            wait_query("q7", query="fields @message", timeout_s=6, poll_s=1, max_poll_s=2, clock=clock,
                       boto3_session=session)
        stub.assert_no_pending_responses()
    assert err.value.status == "Timeout" and err.value.query_id == "q7"
    assert clock.sleeps == [1, 1.5, 2, 1.5]  # backoff, capped at 2 s, trimmed to the deadline
    assert calls == ["GetQueryResults"] * 5 + ["StopQuery"]


def test_run_insights_deadline_covers_the_whole_run(session) -> None:
    logs = client("logs", session)
    clock = FakeClock()
    win = Window(datetime(2024, 5, 19, 6, tzinfo=UTC), datetime(2024, 5, 19, 8, tzinfo=UTC))
    full = [{"@message": f"m{i}", "@ptr": f"p{i}"} for i in range(2)]
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "all"})
        stub.add_response("get_query_results", _result([], status="Running"))
        stub.add_response("get_query_results", _result(full))  # t = 1: at the limit, split
        stub.add_response("start_query", {"queryId": "h1"})
        stub.add_response("get_query_results", _result([], status="Running"))
        stub.add_response("get_query_results", _result([], status="Running"))  # t = 2: deadline
        stub.add_response("stop_query", {"success": True}, {"queryId": "h1"})
        with pytest.raises(InsightsQueryError) as err:
            run_insights("fields @message", [GROUP], window=win, limit=2, timeout_s=2, poll_s=1,
                         max_concurrency=1, clock=clock, boto3_session=session)
        stub.assert_no_pending_responses()  # the second half was never started
    assert err.value.status == "Timeout" and err.value.query_id == "h1"
    assert clock.now == 2


def test_insights_split_at_row_limit_dedupes_ptr(session) -> None:
    logs = client("logs", session)
    win = Window(datetime(2024, 5, 19, 6, tzinfo=UTC), datetime(2024, 5, 19, 8, tzinfo=UTC))
    h = timedelta(hours=1)

    def row(ptr: str, minute: int) -> dict[str, str]:
        ts = (win.start + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S.000")
        return {"@timestamp": ts, "@message": f"ERROR {ptr}", "@ptr": ptr}

    def expect(start: datetime, end: datetime) -> dict[str, Any]:
        return {"logGroupNames": [GROUP], "startTime": _epoch(start), "endTime": _epoch(end),
                "queryString": ANY, "limit": 3}

    q = [win.start, win.start + h / 2, win.start + h, win.start + 1.5 * h, win.end]
    with Stubber(logs) as stub:
        # whole window: 3 rows = limit -> split
        stub.add_response("start_query", {"queryId": "all"}, expect(q[0], q[4]))
        stub.add_response("get_query_results", _result([row("p1", 1), row("p2", 59), row("p3", 61)],
                                                       stats=(9, 90, 900)))
        # first half: 2 rows, kept
        stub.add_response("start_query", {"queryId": "h1"}, expect(q[0], q[2]))
        stub.add_response("get_query_results", _result([row("p2", 59), row("p1", 1)], stats=(2, 40, 400)))
        # second half: 3 rows again -> split into quarters
        stub.add_response("start_query", {"queryId": "h2"}, expect(q[2], q[4]))
        stub.add_response("get_query_results", _result([row("p5", 119), row("p4", 90), row("p3", 61)],
                                                       stats=(7, 50, 500)))
        stub.add_response("start_query", {"queryId": "q3"}, expect(q[2], q[3]))
        stub.add_response("get_query_results", _result([row("p3", 61), row("p6", 60)], stats=(2, 20, 200)))
        stub.add_response("start_query", {"queryId": "q4"}, expect(q[3], q[4]))
        # p6 sits on the shared boundary second and comes back from both quarters
        stub.add_response("get_query_results", _result([row("p5", 119), row("p4", 90)], stats=(2, 30, 300)))
        df = run_insights("fields @timestamp, @message", [GROUP], window=win, limit=3, max_concurrency=1,
                          boto3_session=session)
        stub.assert_no_pending_responses()
    assert df["@ptr"].tolist() == ["p5", "p4", "p3", "p6", "p2", "p1"]  # @timestamp descending
    assert df["@ptr"].is_unique
    assert df["@timestamp"].is_monotonic_decreasing
    assert df.attrs["statistics"] == {"recordsMatched": 6, "recordsScanned": 90, "bytesScanned": 900}
    assert df.attrs["queries"] == 5 and df.attrs["truncated"] is False


def test_insights_stats_at_limit_is_truncated_not_split(session) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", _result([{"@message": "a", "count()": "5"},
                                                        {"@message": "b", "count()": "1"}]))
        df = run_insights(top_errors_query(), [GROUP], window=STUB_WINDOW, limit=2, boto3_session=session)
        stub.assert_no_pending_responses()
    assert len(df) == 2 and df.attrs["truncated"] is True and df.attrs["queries"] == 1


def test_insights_more_than_50_groups_split_into_queries(session) -> None:
    logs = client("logs", session)
    groups = [f"/aws/lambda/Fn{i:03d}" for i in range(120)]
    with Stubber(logs) as stub:
        for k, chunk in enumerate((groups[:50], groups[50:100], groups[100:])):
            stub.add_response("start_query", {"queryId": f"q{k}"}, {
                "logGroupNames": chunk, "startTime": ANY, "endTime": ANY, "queryString": ANY, "limit": 10_000})
            stub.add_response("get_query_results", _result(
                [{"@timestamp": f"2024-04-08 09:0{k}:00.000", "@ptr": f"p{k}"}], stats=(1, 10, 100)))
        df = run_insights("fields @timestamp", groups, window=STUB_WINDOW, max_concurrency=1,
                          boto3_session=session)
        stub.assert_no_pending_responses()
    assert df["@ptr"].tolist() == ["p2", "p1", "p0"]
    assert df.attrs["statistics"]["bytesScanned"] == 300 and df.attrs["queries"] == 3


def test_insights_failed_subquery_raises(session) -> None:
    logs = client("logs", session)
    with Stubber(logs) as stub:
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", _result([], status="Failed"))
        with pytest.raises(InsightsQueryError, match="Failed"):
            run_insights("fields @message", [GROUP], window=STUB_WINDOW, boto3_session=session)


def test_start_query_checks_group_count(session) -> None:
    with pytest.raises(ParameterError):
        start_query("fields @message", [], window=STUB_WINDOW, boto3_session=session)
    with pytest.raises(ParameterError):
        start_query("fields @message", [f"g{i}" for i in range(51)], window=STUB_WINDOW, boto3_session=session)
    with pytest.raises(ParameterError):
        run_insights("fields @message", [], window=STUB_WINDOW, boto3_session=session)


# --- Logs Insights against moto (the real concurrent split path) ----------------------
def test_insights_split_with_concurrency_against_moto(moto_session) -> None:
    logs = client("logs", moto_session)
    base = utcnow().replace(minute=0, second=0) - timedelta(hours=2)
    groups = [f"/aws/lambda/Fn{i:02d}" for i in range(55)]
    for g in groups:
        logs.create_log_group(logGroupName=g)
        logs.create_log_stream(logGroupName=g, logStreamName="s")
    # Fn00 holds 10 events a minute apart; every other group one event
    logs.put_log_events(logGroupName=groups[0], logStreamName="s", logEvents=[
        {"timestamp": int((base + timedelta(minutes=m, seconds=30)).timestamp() * 1000), "message": f"m{m}"}
        for m in range(10)])
    for i, g in enumerate(groups[1:], start=1):
        logs.put_log_events(logGroupName=g, logStreamName="s", logEvents=[
            {"timestamp": int((base + timedelta(minutes=20, seconds=i)).timestamp() * 1000), "message": g}])
    win = Window(base, base + timedelta(hours=1))
    usage(moto_session).reset()
    df = run_insights("fields @timestamp, @message | limit 4", groups[:1], window=win, limit=4,
                      max_concurrency=3, boto3_session=moto_session)
    assert sorted(df["@message"]) == sorted(f"m{m}" for m in range(10))
    assert df["@ptr"].is_unique and df.attrs["queries"] > 1
    assert str(df["@timestamp"].dtype) == "datetime64[ns, UTC]"  # moto sends epoch-ms digits
    assert df["@timestamp"].min() == base + timedelta(seconds=30)
    everything = run_insights("fields @timestamp, @message", groups, window=win, max_concurrency=2,
                              boto3_session=moto_session)
    assert len(everything) == 10 + 54 and everything.attrs["queries"] == 2
