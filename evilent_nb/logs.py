"""CloudWatch Logs as frames: events, error counts, error signatures and Logs Insights.

Layers, from the AWS call up:

- :func:`read_events` pages ``FilterLogEvents`` to the end (an empty page that still has a
  ``nextToken`` does not stop it), interleaving streams, and parses each line's level and
  request id;
- :func:`error_counts` and :func:`error_signatures` summarise ERROR lines;
- Logs Insights: :func:`start_query` -> :func:`wait_query` -> :func:`run_insights`, which
  splits a window whose result hit the row limit, dedupes on ``@ptr``, bounds its total
  time and reports the query statistics in ``frame.attrs["statistics"]``.

Times: ``FilterLogEvents`` takes epoch milliseconds with both ends inclusive, so the
window's exclusive end becomes ``end - 1 ms``. ``StartQuery`` takes epoch seconds with
both ends inclusive; a window is sent as ``[floor(start), ceil(end)]`` so that split halves
overlap by their shared second (never leave a gap) and the ``@ptr`` dedupe absorbs the
overlap.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import boto3
import pandas as pd

from .aws import client, error_code, translate_errors
from .exceptions import InsightsQueryError, ParameterError
from .frames import UTC_TS, typed_frame
from .redact import redact
from .timeframe import Window, parse_window

__all__ = [
    "ERROR_COUNTS_SCHEMA",
    "ERROR_COUNT_CAP",
    "INSIGHTS_MAX_LOG_GROUPS",
    "Clock",
    "ParsedLine",
    "SystemClock",
    "error_counts",
    "error_signatures",
    "parse_line",
    "read_events",
    "run_insights",
    "signature_of",
    "start_query",
    "top_errors_query",
    "wait_query",
]

log = logging.getLogger(__name__)

#: Columns of :func:`error_counts`.
ERROR_COUNTS_SCHEMA: dict[str, str] = {
    "log_group": "string",
    "count": "int64",
    "first_seen": UTC_TS,
    "last_seen": UTC_TS,
}
#: One StartQuery covers at most this many log groups.
INSIGHTS_MAX_LOG_GROUPS = 50
#: FilterLogEvents returns at most this many events per page.
_MAX_PAGE = 10_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _window(window: Window | str) -> Window:
    return window if isinstance(window, Window) else parse_window(window)


def _epoch_ms_ceil(dt: datetime) -> int:
    # ceil: an instant inside a millisecond belongs to the next whole one
    return -((_EPOCH - dt) // timedelta(milliseconds=1))


# --- line parsing -------------------------------------------------------------------
_TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_LEVEL_WORDS = r"ERROR|WARNING|WARN|INFO|DEBUG|FATAL|CRITICAL|TRACE"
_LEVEL_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}

# Lambda's text formats, e.g.
#   Node:    2026-11-27T10:00:00.000Z\t<request-id>\tERROR\t<message>
#   Python:  [ERROR]\t2026-11-27T10:00:00.000Z\t<request-id>\t<message>
#   others:  ERROR: <message>  /  [WARN] <message>  /  <timestamp> INFO <message>
_PREFIX = re.compile(
    rf"^\s*(?:\[(?P<l1>{_LEVEL_WORDS})\][ \t:]*)?"
    rf"(?:(?P<ts>{_TS})[ \t]+)?"
    rf"(?:(?P<rid>{_UUID}|undefined)[ \t]+)?"
    rf"(?:\[?(?P<l2>{_LEVEL_WORDS})\]?(?=[\s:]|$)[ \t:]*)?"
)
_REQUEST_ID = re.compile(rf"RequestId:\s*({_UUID})")
_JSON_LEVEL_KEYS = ("level", "levelname", "severity", "logLevel")
_JSON_RID_KEYS = ("requestId", "request_id", "AWSRequestId", "awsRequestId")
_JSON_MSG_KEYS = ("message", "msg", "errorMessage")


@dataclass(frozen=True)
class ParsedLine:
    """What :func:`parse_line` finds in one log message."""

    level: str | None
    request_id: str | None
    text: str  # the message without its timestamp / request id / level prefix


def parse_line(message: str) -> ParsedLine:
    """Parse the level, request id and text of one log message.

    Understands Lambda's tab-separated formats (Node and Python runtimes), ``START`` /
    ``END`` / ``REPORT`` lines (``RequestId: <uuid>``), a bracketed or leading level word,
    and JSON structured logs (``{"level": ..., "requestId": ..., "message": ...}``).
    Levels are ERROR, WARN, INFO, DEBUG, FATAL or TRACE (WARNING -> WARN, CRITICAL -> FATAL).

    Examples
    --------
    >>> p = parse_line("2026-11-27T10:00:00.000Z\\t8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b\\tERROR\\tboom")
    >>> p.level, p.request_id, p.text
    ('ERROR', '8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b', 'boom')
    """
    message = message or ""
    stripped = message.lstrip()
    if stripped.startswith("{"):
        parsed = _parse_json_line(stripped)
        if parsed is not None:
            return parsed
    m = _PREFIX.match(message)
    level = m.group("l1") or m.group("l2") if m else None
    rid = m.group("rid") if m else None
    if rid == "undefined":
        rid = None
    if rid is None:
        found = _REQUEST_ID.search(message)
        rid = found.group(1) if found else None
    text = message[m.end():] if m else message
    return ParsedLine(_LEVEL_ALIASES.get(level, level) if level else None, rid.lower() if rid else None, text)


def _parse_json_line(text: str) -> ParsedLine | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    level = next((str(obj[k]).upper() for k in _JSON_LEVEL_KEYS if obj.get(k)), None)
    if level and level not in _LEVEL_WORDS.split("|"):
        level = None
    rid = next((str(obj[k]) for k in _JSON_RID_KEYS if obj.get(k)), None)
    msg = next((obj[k] for k in _JSON_MSG_KEYS if obj.get(k)), None)
    if isinstance(msg, dict):  # Lambda JSON format nests the error object
        msg = _error_text(msg) or json.dumps(msg)
    elif obj.get("errorType") and isinstance(msg, str):
        msg = f"{obj['errorType']}: {msg}"
    return ParsedLine(_LEVEL_ALIASES.get(level, level) if level else None, rid, str(msg) if msg else text)


def _error_text(obj: dict[str, Any]) -> str | None:
    etype, emsg = obj.get("errorType"), obj.get("errorMessage")
    if etype or emsg:
        return f"{etype}: {emsg}" if etype and emsg else str(etype or emsg)
    return None


# --- FilterLogEvents ----------------------------------------------------------------
def read_events(
    log_group: str,
    *,
    window: Window | str,
    pattern: str | None = None,
    limit: int | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Read the events of one log group in a window, all streams interleaved.

    Pages ``FilterLogEvents`` until no ``nextToken`` is left: a page may be empty while more
    follow. A log group that does not exist gives an empty frame with
    ``frame.attrs["missing"] = True`` (Lambda creates its group on the first invocation, so a
    missing group means "no logs", not a failure).

    Parameters
    ----------
    log_group
        Log group name, e.g. ``/aws/lambda/UserServiceStack-ServiceUserServiceFunction``.
    window
        :class:`~evilent_nb.timeframe.Window` or a spec (``24h``, ``START/END``); start
        inclusive, end exclusive.
    pattern
        A CloudWatch Logs filter pattern (``ERROR``, ``"Task timed out"`` ...).
    limit
        Stop after this many events (the earliest ones).

    Returns
    -------
    pandas.DataFrame
        ``SCHEMAS["log_events"]``: timestamp, log_group, log_stream, message, event_id,
        ingestion_time, level, request_id; sorted by timestamp. ``message`` is the raw line
        without its trailing newline; ``level`` and ``request_id`` are ``<NA>`` when the line
        has none (see :func:`parse_line`).

    Raises
    ------
    DataSourceError, AwsAccessError

    Examples
    --------
    >>> errors = read_events("/aws/lambda/UserFn", window="24h", pattern="ERROR")  # doctest: +SKIP
    >>> errors[["timestamp", "level", "request_id", "message"]].head()           # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
    """
    win = _window(window)
    if limit is not None and limit <= 0:
        raise ParameterError(f"limit must be positive, not {limit}")
    params = _filter_params(log_group, win, pattern)
    if limit is not None:
        params["PaginationConfig"] = {"PageSize": min(limit, _MAX_PAGE)}
    logs = client("logs", boto3_session)
    raw: list[dict[str, Any]] = []
    missing = False
    with translate_errors("logs.FilterLogEvents"):
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**params):
                raw.extend(page.get("events") or [])
                if limit is not None and len(raw) >= limit:
                    break
        except logs.exceptions.ResourceNotFoundException:
            missing = True
    if limit is not None:
        raw = raw[:limit]
    frame = _events_frame(raw, log_group)
    frame.attrs["missing"] = missing
    return frame


def _events_frame(raw: list[dict[str, Any]], log_group: str) -> pd.DataFrame:
    rows = []
    for ev in raw:
        message = (ev.get("message") or "").rstrip("\r\n")
        parsed = parse_line(message)
        rows.append({
            "timestamp": ev.get("timestamp"),
            "log_group": log_group,
            "log_stream": ev.get("logStreamName"),
            "message": message,
            "event_id": ev.get("eventId"),
            "ingestion_time": ev.get("ingestionTime"),
            "level": parsed.level,
            "request_id": parsed.request_id,
        })
    df = pd.DataFrame(rows)
    for col in ("timestamp", "ingestion_time"):
        if col in df:
            df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    frame = typed_frame(df, "log_events")
    return frame.sort_values("timestamp", kind="stable", ignore_index=True)


def _filter_params(log_group: str, win: Window, pattern: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": _epoch_ms_ceil(win.start),
        "endTime": _epoch_ms_ceil(win.end) - 1,
        "interleaved": True,  # ignored by AWS since 2019 (always interleaved); kept for older stand-ins
    }
    if pattern:
        params["filterPattern"] = pattern
    return params


#: :func:`error_counts` stops counting a log group at this many matching events.
ERROR_COUNT_CAP = 10_000


def error_counts(
    log_groups: Iterable[str],
    *,
    window: Window | str,
    pattern: str = "ERROR",
    max_events: int | None = ERROR_COUNT_CAP,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Count the lines matching ``pattern`` in each log group.

    FilterLogEvents has no count-only mode: counting means reading every matching event
    (10,000 or 1 MB per page, 5 requests per second per account). A busy group can hold
    millions of ERROR lines in a day, so each group stops at ``max_events``: its count is
    then a lower bound, the group is listed in ``attrs["capped"]`` and a warning is logged.
    Events are counted page by page, never kept or parsed.

    Parameters
    ----------
    log_groups
        Log group names; each gives one row, in this order (duplicates once).
    window
        Window or spec; start inclusive, end exclusive.
    pattern
        Filter pattern (default ``ERROR``, the runbook's).
    max_events
        Stop counting a group at this many events (default 10,000); ``None`` for no cap.

    Returns
    -------
    pandas.DataFrame
        log_group, count (int64, 0 when nothing matched; at most ``max_events``),
        first_seen, last_seen (``NaT`` when the count is 0; for a capped group, over the
        events counted). ``attrs["missing"]`` lists groups that do not exist (counted 0),
        ``attrs["capped"]`` the groups whose count stopped at ``max_events``.

    Examples
    --------
    >>> error_counts(["/aws/lambda/UserFn", "/aws/lambda/ProductFn"], window="24h")  # doctest: +SKIP
                   log_group  count                first_seen                 last_seen
    0     /aws/lambda/UserFn    150 2026-11-28 03:00:12+00:00 2026-11-28 03:59:40+00:00
    1  /aws/lambda/ProductFn      0                       NaT                       NaT
    """
    if max_events is not None and max_events <= 0:
        raise ParameterError(f"max_events must be positive, not {max_events}")
    win = _window(window)
    logs = client("logs", boto3_session)
    rows, missing, capped = [], [], []
    for group in dict.fromkeys(log_groups):
        params = _filter_params(group, win, pattern)
        if max_events is not None:
            params["PaginationConfig"] = {"PageSize": min(max_events, _MAX_PAGE)}
        count, first, last = 0, None, None
        with translate_errors("logs.FilterLogEvents"):
            try:
                for page in logs.get_paginator("filter_log_events").paginate(**params):
                    times = [ev["timestamp"] for ev in page.get("events") or () if "timestamp" in ev]
                    if max_events is not None:
                        times = times[: max_events - count]
                    if times:
                        count += len(times)
                        first = min(times) if first is None else min(first, *times)
                        last = max(times) if last is None else max(last, *times)
                    if max_events is not None and count >= max_events:
                        capped.append(group)
                        log.warning("%s: counting stopped at %d %r events (the count is a lower bound)",
                                    group, count, pattern)
                        break
            except logs.exceptions.ResourceNotFoundException:
                missing.append(group)
        rows.append({
            "log_group": group,
            "count": count,
            "first_seen": pd.Timestamp(first, unit="ms", tz="UTC") if first is not None else pd.NaT,
            "last_seen": pd.Timestamp(last, unit="ms", tz="UTC") if last is not None else pd.NaT,
        })
    frame = typed_frame(rows, ERROR_COUNTS_SCHEMA)
    frame.attrs["missing"] = missing
    frame.attrs["capped"] = capped
    return frame


# --- error signatures ---------------------------------------------------------------
_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(_TS), "<ts>"),
    (re.compile(_UUID), "<uuid>"),
    (re.compile(r"\b1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}\b"), "<trace>"),  # X-Ray trace ids
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])"), "<ip>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"), "<ip>"),
    # quoted values, but not JSON keys (a quoted string followed by a colon)
    (re.compile(r'"[^"\n]{1,200}"(?!\s*:)'), '"<str>"'),
    (re.compile(r"(?<!\w)'[^'\n]{1,200}'(?!\w)"), "'<str>'"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z_])\d+(?:\.\d+)?"), "<n>"),
]
_SPACES = re.compile(r"\s+")
_SIGNATURE_MAX = 300
_EXAMPLE_LINES = 5
_EXAMPLE_MAX = 1000


def signature_of(message: str) -> str:
    """The signature of one error line: its first meaningful line, with what varies normalised.

    The Lambda prefix (timestamp, request id, level) is dropped; secrets are redacted;
    timestamps, UUIDs (request ids), trace ids, e-mails, IPs (with ports), quoted values,
    hex and numbers become ``<ts>``, ``<uuid>``, ``<trace>``, ``<email>``, ``<ip>``,
    ``"<str>"``, ``<hex>`` and ``<n>``. A Node ``Invoke Error`` JSON payload is reduced to
    ``errorType: errorMessage``.

    Examples
    --------
    >>> signature_of("2026-11-27T10:00:00.000Z\\t8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b\\tERROR\\t"
    ...              "Error: connect ETIMEDOUT 10.0.1.23:5432 after 3000ms")
    'Error: connect ETIMEDOUT <ip> after <n>ms'
    """
    text = parse_line(message or "").text
    brace = text.find('{"errorType"')
    if brace >= 0:
        try:
            obj = json.loads(text[brace:])
        except ValueError:
            obj = None
        if isinstance(obj, dict) and (err := _error_text(obj)):
            text = err
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = redact(line)
    for pattern, repl in _NORMALISERS:
        line = pattern.sub(repl, line)
    return _SPACES.sub(" ", line).strip()[:_SIGNATURE_MAX]


def _example(message: str) -> str:
    lines = [ln for ln in message.splitlines() if ln.strip()][:_EXAMPLE_LINES]
    return "\n".join(lines)[:_EXAMPLE_MAX]


def error_signatures(events: pd.DataFrame, *, top: int | None = None) -> pd.DataFrame:
    """Group error lines into one row per kind of error.

    Every event given counts (pass ERROR lines, e.g. ``read_events(..., pattern="ERROR")``).

    Parameters
    ----------
    events
        A frame with ``message`` and ``timestamp`` (and ``log_group``), as from
        :func:`read_events`.
    top
        Keep only the ``top`` most frequent signatures.

    Returns
    -------
    pandas.DataFrame
        ``SCHEMAS["error_signatures"]``: signature (see :func:`signature_of`), count,
        first_seen, last_seen, example (the first lines of the earliest raw message; not
        redacted, run :func:`evilent_nb.redact.redact_frame` before publishing), log_group
        (the group with most of them). Sorted by count descending, then first_seen.

    Examples
    --------
    >>> errors = read_events("/aws/lambda/UserFn", window="24h", pattern="ERROR")  # doctest: +SKIP
    >>> error_signatures(errors, top=10)[["signature", "count"]]                  # doctest: +SKIP
                                   signature  count
    0  Error: connect ETIMEDOUT <ip>            143
    1  TypeError: Cannot read properties ...      7
    """
    if events is None or len(events) == 0:
        return typed_frame([], "error_signatures")
    df = pd.DataFrame({
        "message": events["message"].astype("string").fillna(""),
        "timestamp": pd.to_datetime(events["timestamp"], utc=True),
        "log_group": events["log_group"].astype("string") if "log_group" in events else pd.NA,
    })
    df = df.sort_values("timestamp", kind="stable", ignore_index=True)
    df["signature"] = [signature_of(m) for m in df["message"]]
    rows = []
    for sig, grp in df.groupby("signature", sort=False):
        groups = Counter(g for g in grp["log_group"] if isinstance(g, str))
        top_group = min(groups.items(), key=lambda kv: (-kv[1], kv[0]))[0] if groups else None
        rows.append({
            "signature": sig,
            "count": len(grp),
            "first_seen": grp["timestamp"].min(),
            "last_seen": grp["timestamp"].max(),
            "example": _example(grp["message"].iloc[0]),
            "log_group": top_group,
        })
    frame = typed_frame(rows, "error_signatures")
    frame = frame.sort_values(["count", "first_seen", "signature"], ascending=[False, True, True],
                              kind="stable", ignore_index=True)
    return frame.head(top).reset_index(drop=True) if top is not None else frame


# --- Logs Insights ------------------------------------------------------------------
_RUNNING = frozenset({"Scheduled", "Running"})
_STAT_KEYS = ("recordsMatched", "recordsScanned", "bytesScanned")
_TEXT_FIELDS = frozenset({"@message", "@logStream", "@log", "@ptr", "@requestId"})
_EPOCH_MS_FIELDS = frozenset({"@timestamp", "@ingestionTime"})
_AWS_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$")
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


class Clock(Protocol):
    """What Insights polling needs of time (tests pass a fake one)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def top_errors_query(limit: int = 10) -> str:
    """The runbook's Insights query for the most frequent ERROR messages.

    Examples
    --------
    >>> top_errors_query()
    'fields @timestamp, @message | filter @message like /ERROR/ | stats count() by @message | sort count desc | limit 10'
    """
    return (
        "fields @timestamp, @message | filter @message like /ERROR/ "
        f"| stats count() by @message | sort count desc | limit {int(limit)}"
    )


def _insights_bounds(win: Window) -> tuple[int, int]:
    start = win.start.timestamp()
    end = win.end.timestamp()
    return math.floor(start), math.ceil(end)


def start_query(
    query: str,
    log_groups: Sequence[str],
    *,
    window: Window | str,
    limit: int = 10_000,
    boto3_session: boto3.Session | None = None,
) -> str:
    """Start one Logs Insights query and return its id.

    Parameters
    ----------
    query
        Insights query string.
    log_groups
        1 to 50 log group names (:func:`run_insights` splits longer lists).
    window
        Window or spec; sent as epoch seconds ``[floor(start), ceil(end)]`` (Insights
        includes both ends).
    limit
        Most rows returned (``limit`` of StartQuery).

    Returns
    -------
    str
        The query id, for :func:`wait_query`.

    Raises
    ------
    ParameterError
        No log group, or more than 50.
    DataSourceError
        E.g. a malformed query or an unknown log group.

    Examples
    --------
    >>> qid = start_query(top_errors_query(), ["/aws/lambda/UserFn"], window="1h")  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html
    """
    groups = list(log_groups)
    if not groups or len(groups) > INSIGHTS_MAX_LOG_GROUPS:
        raise ParameterError(
            f"an Insights query takes 1 to {INSIGHTS_MAX_LOG_GROUPS} log groups, not {len(groups)}"
            " (run_insights splits longer lists)"
        )
    start, end = _insights_bounds(_window(window))
    logs = client("logs", boto3_session)
    with translate_errors("logs.StartQuery"):
        resp = logs.start_query(
            logGroupNames=groups, startTime=start, endTime=end, queryString=query, limit=int(limit)
        )
    return str(resp["queryId"])


def _get_query_results(logs: Any, query_id: str) -> dict[str, Any]:
    """The one GetQueryResults loop: one call, then ``nextToken`` pages once Complete."""
    with translate_errors("logs.GetQueryResults"):
        resp = dict(logs.get_query_results(queryId=query_id))
        results = list(resp.get("results") or [])
        seen: set[str] = set()
        token = resp.get("nextToken")
        # Newer APIs page large results; only a complete result is worth paging.
        while token and token not in seen and resp.get("status") == "Complete":
            seen.add(token)
            page = logs.get_query_results(queryId=query_id, nextToken=token)
            results.extend(page.get("results") or [])
            if page.get("statistics"):
                resp["statistics"] = page["statistics"]
            token = page.get("nextToken")
    resp["results"] = results
    resp.pop("nextToken", None)
    return resp


def _stop_query(logs: Any, query_id: str) -> None:
    # Best effort: the query may have just finished, or the endpoint may not implement it.
    try:
        logs.stop_query(queryId=query_id)
    except Exception as exc:
        log.debug("stop_query(%s) failed (%s): %s", query_id, error_code(exc) or type(exc).__name__, exc)


def wait_query(
    query_id: str,
    *,
    query: str = "",
    timeout_s: float = 300.0,
    poll_s: float = 1.0,
    max_poll_s: float = 10.0,
    clock: Clock | None = None,
    boto3_session: boto3.Session | None = None,
) -> dict[str, Any]:
    """Poll an Insights query until it completes, with backoff and a deadline.

    Polls at ``poll_s``, growing 1.5x per poll up to ``max_poll_s``. At the deadline it
    calls ``StopQuery`` (its failure is tolerated) and raises.

    Parameters
    ----------
    query_id
        From :func:`start_query`.
    query
        The query string, named in errors.
    timeout_s
        Overall deadline in seconds.
    poll_s, max_poll_s
        First poll interval and its cap.
    clock
        Time source (default :class:`SystemClock`).

    Returns
    -------
    dict
        The ``GetQueryResults`` response with status ``Complete``, every result page joined
        in ``results``.

    Raises
    ------
    InsightsQueryError
        Status Failed, Cancelled, Timeout or Unknown (``.status`` names it), or the deadline
        passed (status ``Timeout``).

    Examples
    --------
    >>> resp = wait_query(qid, query=q, timeout_s=60)   # doctest: +SKIP
    >>> resp["statistics"]["bytesScanned"]             # doctest: +SKIP
    """
    clock = clock or SystemClock()
    logs = client("logs", boto3_session)
    deadline = clock.monotonic() + timeout_s
    delay = max(poll_s, 0.0)
    while True:
        resp = _get_query_results(logs, query_id)
        status = str(resp.get("status") or "Unknown")
        if status == "Complete":
            return resp
        if status not in _RUNNING:
            raise InsightsQueryError(status, query, query_id)
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            _stop_query(logs, query_id)
            raise InsightsQueryError("Timeout", query, query_id)
        clock.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_poll_s)


@dataclass
class _Task:
    groups: list[str]
    window: Window


@dataclass
class _Outcome:
    rows: list[dict[str, str]] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=dict)


def run_insights(
    query: str,
    log_groups: Sequence[str] | str,
    *,
    window: Window | str,
    limit: int = 10_000,
    timeout_s: float = 300.0,
    max_concurrency: int = 4,
    poll_s: float = 1.0,
    clock: Clock | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Run a Logs Insights query over any number of log groups and return a typed frame.

    Log groups go 50 per query. When a query of raw events (rows with ``@ptr``) returns
    ``limit`` rows, its window is split in halves and each half is queried again, down to
    2-second windows, with at most ``max_concurrency`` queries in flight; rows are deduped
    on ``@ptr``. An aggregating query (``stats``: no ``@ptr``) that hits the limit cannot be
    split soundly; it is returned as is with ``attrs["truncated"] = True``.

    Parameters
    ----------
    query
        Insights query string, e.g. :func:`top_errors_query`.
    log_groups
        Log group names (one name is accepted too).
    window
        Window or spec.
    limit
        Row limit per query (StartQuery ``limit``).
    timeout_s
        Deadline for the whole run, splits included.
    max_concurrency
        Queries in flight at once.
    poll_s
        First poll interval (see :func:`wait_query`).
    clock
        Time source (default :class:`SystemClock`).

    Returns
    -------
    pandas.DataFrame
        One column per result field, in first-seen order. Numeric strings become ``Int64``
        or ``float64``; ``@timestamp`` (AWS's ``YYYY-MM-DD hh:mm:ss.sss`` UTC, or epoch ms)
        and other AWS-formatted times become UTC timestamps; the rest is ``string``. When
        several queries' rows are merged and ``@timestamp`` is present, rows are sorted by it
        (descending unless the query sorts ``@timestamp asc``). ``attrs``: ``statistics``
        (recordsMatched, recordsScanned, bytesScanned summed over the queries whose rows are
        kept), ``queries`` (how many were run), ``truncated`` (bool).

    Raises
    ------
    InsightsQueryError
        A query ended Failed, Cancelled, Timeout or Unknown, or the deadline passed.
    ParameterError
        No log group.

    Examples
    --------
    >>> top = run_insights(top_errors_query(), estate.log_groups, window="1h")  # doctest: +SKIP
    >>> top[["@message", "count()"]]                                          # doctest: +SKIP
    >>> top.attrs["statistics"]["bytesScanned"]                                # doctest: +SKIP
    """
    groups = [log_groups] if isinstance(log_groups, str) else list(dict.fromkeys(log_groups))
    if not groups:
        raise ParameterError("run_insights needs at least one log group")
    clock = clock or SystemClock()
    win = _window(window)
    deadline = clock.monotonic() + timeout_s
    pending: deque[_Task] = deque(
        _Task(groups[i:i + INSIGHTS_MAX_LOG_GROUPS], win) for i in range(0, len(groups), INSIGHTS_MAX_LOG_GROUPS)
    )
    kept: list[_Outcome] = []
    state = {"queries": 0, "truncated": False, "merged": 0}
    lock = threading.Lock()

    def run(task: _Task) -> _Outcome:
        qid = start_query(query, task.groups, window=task.window, limit=limit, boto3_session=boto3_session)
        with lock:
            state["queries"] += 1
        remaining = max(deadline - clock.monotonic(), 0.0)
        resp = wait_query(qid, query=query, timeout_s=remaining, poll_s=poll_s, clock=clock,
                          boto3_session=boto3_session)
        rows = [{f["field"]: f.get("value") for f in row if "field" in f} for row in resp["results"]]
        stats = {k: float((resp.get("statistics") or {}).get(k) or 0.0) for k in _STAT_KEYS}
        return _Outcome(rows, stats)

    # A work queue drained from this thread: workers never wait on other workers, so the
    # bounded pool cannot deadlock however deep the splits go.
    with ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="insights") as pool:
        running: dict[Future[_Outcome], _Task] = {}
        try:
            while pending or running:
                while pending and len(running) < max(1, max_concurrency):
                    if clock.monotonic() >= deadline:  # no new query once the time is spent
                        raise InsightsQueryError("Timeout", query)
                    task = pending.popleft()
                    running[pool.submit(run, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = running.pop(fut)
                    outcome = fut.result()
                    hit_limit = len(outcome.rows) >= limit
                    splittable = all("@ptr" in r for r in outcome.rows)
                    if hit_limit and splittable and task.window.duration >= timedelta(seconds=2):
                        pending.extend(_Task(task.groups, half) for half in task.window.halves())
                        continue
                    if hit_limit:
                        state["truncated"] = True
                    kept.append(outcome)
        finally:
            for fut in running:
                fut.cancel()

    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for outcome in kept:
        for row in outcome.rows:
            ptr = row.get("@ptr")
            if ptr is not None:
                if ptr in seen:
                    continue
                seen.add(ptr)
            rows.append(row)
    frame = _insights_frame(rows, query)
    if len(kept) > 1 and "@timestamp" in frame.columns:
        ascending = bool(re.search(r"sort\s+@timestamp\s+asc\b", query, re.IGNORECASE))
        frame = frame.sort_values("@timestamp", ascending=ascending, kind="stable", ignore_index=True)
    frame.attrs["statistics"] = {k: sum(o.statistics.get(k, 0.0) for o in kept) for k in _STAT_KEYS}
    frame.attrs["queries"] = state["queries"]
    frame.attrs["truncated"] = bool(state["truncated"])
    return frame


def _query_fields(query: str) -> list[str]:
    """Columns of an empty result, from a simple ``fields`` command (none for ``stats``)."""
    commands = [c.strip() for c in query.split("|")]
    if any(re.match(r"stats\b", c, re.IGNORECASE) for c in commands):
        return []
    cols: list[str] = []
    for cmd in commands:
        m = re.match(r"fields\s+(.*)$", cmd, re.IGNORECASE | re.S)
        if not m:
            continue
        for item in m.group(1).split(","):
            alias = re.search(r"\bas\s+(@?[\w.]+)\s*$", item.strip(), re.IGNORECASE)
            name = alias.group(1) if alias else item.strip()
            if re.fullmatch(r"@?[\w.]+", name) and name not in cols:
                cols.append(name)
    return cols


def _insights_frame(rows: list[dict[str, str]], query: str) -> pd.DataFrame:
    columns: list[str] = list(dict.fromkeys(k for row in rows for k in row))
    if not rows:
        columns = _query_fields(query)
        if columns:
            columns.append("@ptr")
    df = pd.DataFrame(rows, columns=columns)
    for col in columns:
        df[col] = _typed_column(col, df[col])
    return df


def _typed_column(name: str, values: pd.Series) -> pd.Series:
    present = values.dropna().astype(str)
    if name in _TEXT_FIELDS:
        return values.astype("string")
    if name in _EPOCH_MS_FIELDS and len(present) and present.str.fullmatch(_INT.pattern).all():
        return pd.to_datetime(pd.to_numeric(values), unit="ms", utc=True).astype(UTC_TS)
    if name in _EPOCH_MS_FIELDS or (len(present) and present.str.fullmatch(_AWS_TS.pattern).all()):
        return pd.to_datetime(values, utc=True, format="mixed", errors="coerce").astype(UTC_TS)
    if len(present) and present.str.fullmatch(_INT.pattern).all():
        return pd.to_numeric(values).astype("Int64")
    if len(present) and present.str.fullmatch(_FLOAT.pattern).all():
        return pd.to_numeric(values).astype("float64")
    return values.astype("string")

