from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from evilent_nb.exceptions import WindowError
from evilent_nb.timeframe import (
    MAX_DATAPOINTS_PER_CALL,
    Window,
    choose_period,
    isoformat,
    parse_time,
    parse_window,
)

NOW = "2026-11-28T09:00:00Z"
NOW_DT = datetime(2026, 11, 28, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "duration"),
    [
        ("24h", timedelta(hours=24)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("35D", timedelta(days=35)),
        ("2w", timedelta(weeks=2)),
        (" 3h ", timedelta(hours=3)),
    ],
)
def test_relative_windows_end_now(spec: str, duration: timedelta) -> None:
    w = parse_window(spec, now=NOW)
    assert w.end == NOW_DT
    assert w.duration == duration
    assert w.start.tzinfo is not None and w.start.utcoffset() == timedelta(0)


def test_absolute_window_converts_offsets_to_utc() -> None:
    w = parse_window("2026-11-27T10:00:00+02:00/2026-11-27T12:00:00Z", now=NOW)
    assert w.start == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert w.end == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert w.to_dict() == {"start": "2026-11-27T08:00:00Z", "end": "2026-11-27T12:00:00Z"}


def test_naive_times_are_utc() -> None:
    assert parse_time("2026-11-27T10:00:00") == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_time(datetime(2026, 11, 27, 10)) == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_time(pd.Timestamp("2026-11-27T10:00:00Z")) == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_time(1_764_237_600_000) == datetime(2025, 11, 27, 10, tzinfo=UTC)
    assert parse_time(1_764_237_600) == datetime(2025, 11, 27, 10, tzinfo=UTC)
    est = timezone(timedelta(hours=-5))
    assert parse_time(datetime(2026, 11, 27, 5, tzinfo=est)) == datetime(2026, 11, 27, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("yesterday", "use Nh, Nd, Nw"),
        ("24", "use Nh, Nd, Nw"),
        ("0h", "positive"),
        ("-3h", "use Nh"),
        ("5m", "use Nh"),
        ("2026-11-28T08:00:00Z/2026-11-28T07:00:00Z", "before or when it starts"),
        ("2026-11-28T08:00:00Z/2026-11-28T08:00:00Z", "before or when it starts"),
        ("2026-11-28T08:00:00Z/not-a-time", "bad time"),
        ("2026-11-29T08:00:00Z/2026-11-30T08:00:00Z", "starts in the future"),
        ("2026-11-28T08:00:00Z/2026-11-28T12:00:00Z", "ends in the future"),
        ("2025-08-01T00:00:00Z/2025-08-02T00:00:00Z", "455 days"),
        ("500d", "455 days"),
    ],
)
def test_bad_windows_are_rejected_with_one_clear_line(spec: str, fragment: str) -> None:
    with pytest.raises(WindowError) as info:
        parse_window(spec, now=NOW)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_window_error_is_bad_input_exit_2() -> None:
    with pytest.raises(WindowError) as info:
        parse_window("nonsense", now=NOW)
    assert info.value.exit_code == 2


def test_ending_slightly_in_future_is_allowed() -> None:
    w = parse_window("2026-11-28T08:00:00Z/2026-11-28T09:30:00Z", now=NOW)
    assert w.end == datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def test_halves_and_contains() -> None:
    w = Window("2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z")
    a, b = w.halves()
    assert a.start == w.start and b.end == w.end and a.end == b.start
    assert a.end == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert w.contains("2026-11-27T00:00:00Z")
    assert not w.contains("2026-11-28T00:00:00Z")  # end is exclusive


def test_isoformat_is_z_seconds() -> None:
    assert isoformat(datetime(2026, 11, 28, 9, 0, 5, 123456, tzinfo=UTC)) == "2026-11-28T09:00:05Z"


@pytest.mark.parametrize(
    ("spec", "n_queries", "min_period", "expected"),
    [
        ("3h", 1, 60, 60),  # recent: per-minute allowed
        ("24h", 21, 60, 60),  # 21 * 1440 = 30,240 points: fits
        ("7d", 21, 60, 300),  # 21 * 10,080 = 211,680 > cap at 60 s; 300 s fits
        ("7d", 500, 60, 3600),  # 500 queries: only hourly (84,000 points) fits the cap
        ("7d", 21, 3600, 3600),  # hourly rules ask for at least an hour
        ("30d", 1, 60, 300),  # 15-63 days back: multiples of 300 only
        ("90d", 1, 60, 3600),  # beyond 63 days: multiples of 3600 only
    ],
)
def test_choose_period_respects_tiers_and_cap(spec: str, n_queries: int, min_period: int, expected: int) -> None:
    w = parse_window(spec, now=NOW)
    period = choose_period(w, n_queries, now=NOW, min_period=min_period)
    per_call = min(n_queries, 500)
    points = per_call * (w.duration.total_seconds() / period)
    assert points <= MAX_DATAPOINTS_PER_CALL
    assert period == expected


def test_choose_period_long_window_many_queries_uses_days() -> None:
    w = parse_window("400d", now=NOW)
    period = choose_period(w, 500, now=NOW)
    assert period % 86400 == 0
    assert 500 * w.duration.total_seconds() / period <= MAX_DATAPOINTS_PER_CALL
