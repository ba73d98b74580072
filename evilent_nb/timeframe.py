"""Time windows, UTC from edge to edge, and CloudWatch period choice.

A window is written ``Nh``, ``Nd``, ``Nw`` (ending now) or ``START/END`` in ISO-8601.
Every time is UTC: a time without an offset is taken as UTC, one with an offset is
converted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from .exceptions import WindowError

__all__ = [
    "CLOUDWATCH_RETENTION",
    "MAX_DATAPOINTS_PER_CALL",
    "MAX_QUERIES_PER_CALL",
    "Window",
    "choose_period",
    "isoformat",
    "parse_time",
    "parse_window",
    "utcnow",
]

#: CloudWatch keeps hourly data this long; nothing older can be asked for.
CLOUDWATCH_RETENTION = timedelta(days=455)
#: GetMetricData limits, per call.
MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
#: How far past "now" a window may end (clock skew, "until the end of this hour").
FUTURE_SLACK = timedelta(hours=1)

_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# Periods we pick from: 1 min, 5 min, 15 min, 1 h, 6 h, 1 d.
_NICE_PERIODS = (60, 300, 900, 3600, 21600, 86400)


def utcnow() -> datetime:
    """Now, tz-aware UTC, to the second.

    Examples
    --------
    >>> utcnow().tzinfo
    datetime.timezone.utc
    """
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(value: Any) -> datetime:
    """Parse one instant into a tz-aware UTC datetime.

    Accepts ISO-8601 strings (``Z`` or an offset; none means UTC), ``datetime``,
    ``pandas.Timestamp`` and epoch seconds or milliseconds (numbers).

    Raises
    ------
    WindowError
        When the value is not a time.

    Examples
    --------
    >>> parse_time("2026-11-28T10:00:00+01:00")
    datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        dt = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise WindowError("empty time: expected ISO-8601 UTC such as 2026-11-28T09:00:00Z")
        try:
            dt = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError as exc:
            raise WindowError(
                f"bad time {value!r}: expected ISO-8601 UTC such as 2026-11-28T09:00:00Z"
            ) from exc
    else:
        raise WindowError(f"bad time {value!r}: expected ISO-8601 UTC such as 2026-11-28T09:00:00Z")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def isoformat(dt: datetime | pd.Timestamp) -> str:
    """``2026-11-28T09:00:00Z`` (UTC, seconds, ``Z``).

    Examples
    --------
    >>> isoformat(parse_time("2026-11-28 09:00:05.5"))
    '2026-11-28T09:00:05Z'
    """
    return parse_time(dt).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Window:
    """A closed-open interval ``[start, end)`` of UTC time.

    Examples
    --------
    >>> w = Window.parse("24h", now="2026-11-28T09:00:00Z")
    >>> w.to_dict()
    {'start': '2026-11-27T09:00:00Z', 'end': '2026-11-28T09:00:00Z'}
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", parse_time(self.start))
        object.__setattr__(self, "end", parse_time(self.end))
        if self.end <= self.start:
            raise WindowError(
                f"window ends ({isoformat(self.end)}) before or when it starts ({isoformat(self.start)})"
            )

    @classmethod
    def parse(cls, spec: str | Window, *, now: Any = None) -> Window:
        """See :func:`parse_window`."""
        return parse_window(spec, now=now)

    @classmethod
    def ending(cls, end: Any, duration: timedelta) -> Window:
        """The window of ``duration`` that ends at ``end``."""
        end_dt = parse_time(end)
        return cls(end_dt - duration, end_dt)

    @property
    def duration(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start

    def halves(self) -> tuple[Window, Window]:
        """Split in two at the midpoint (for Insights queries that hit their row limit)."""
        mid = self.start + (self.end - self.start) / 2
        mid = mid.replace(microsecond=0) if mid.microsecond and mid > self.start else mid
        return Window(self.start, mid), Window(mid, self.end)

    def contains(self, when: Any) -> bool:
        """Whether ``start <= when < end``."""
        t = parse_time(when)
        return self.start <= t < self.end

    def to_dict(self) -> dict[str, str]:
        """``{"start": ISO, "end": ISO}`` as in summary.json."""
        return {"start": isoformat(self.start), "end": isoformat(self.end)}

    def __str__(self) -> str:
        return f"{isoformat(self.start)}/{isoformat(self.end)}"


def parse_window(
    spec: str | Window,
    *,
    now: Any = None,
    max_age: timedelta | None = CLOUDWATCH_RETENTION,
) -> Window:
    """Parse a window and check it can be asked of AWS.

    Parameters
    ----------
    spec
        ``Nh``, ``Nd``, ``Nw`` (ending at ``now``) or ``START/END`` in ISO-8601.
    now
        The reference "now" (default: the current time). Reports pass a frozen one so that a
        replay asks for the same window.
    max_age
        The oldest start accepted (CloudWatch keeps 455 days); ``None`` for no limit.

    Returns
    -------
    Window

    Raises
    ------
    WindowError
        Malformed, zero-length or reversed, starting in the future, ending more than an hour
        ahead, or starting before ``now - max_age``.

    Examples
    --------
    >>> parse_window("2026-11-01T00:00:00Z/2026-11-02T00:00:00Z", now="2026-11-28T00:00:00Z").duration
    datetime.timedelta(days=1)
    """
    ref = parse_time(now) if now is not None else utcnow()
    if isinstance(spec, Window):
        window = spec
    elif not isinstance(spec, str):
        raise WindowError(f"bad window {spec!r}: use Nh, Nd, Nw or START/END in ISO-8601 UTC")
    elif m := _RELATIVE.match(spec):
        n = int(m.group(1))
        if n <= 0:
            raise WindowError(f"bad window {spec!r}: the length must be positive")
        window = Window.ending(ref, timedelta(**{_UNITS[m.group(2).lower()]: n}))
    elif "/" in spec:
        start_s, _, end_s = spec.partition("/")
        try:
            window = Window(parse_time(start_s), parse_time(end_s))
        except WindowError as exc:
            raise WindowError(f"bad window {spec!r}: {exc}") from exc
    else:
        raise WindowError(f"bad window {spec!r}: use Nh, Nd, Nw (e.g. 24h, 7d, 2w) or START/END in ISO-8601 UTC")
    if window.start >= ref:
        raise WindowError(f"window {window} starts in the future (now is {isoformat(ref)})")
    if window.end > ref + FUTURE_SLACK:
        raise WindowError(f"window {window} ends in the future (now is {isoformat(ref)})")
    if max_age is not None and window.start < ref - max_age:
        raise WindowError(
            f"window {window} starts more than {max_age.days} days ago; CloudWatch keeps no older data"
        )
    return window


def _tier_base(start: datetime, now: datetime) -> int:
    age = now - start
    if age <= timedelta(days=15):
        return 60
    if age <= timedelta(days=63):
        return 300
    return 3600


def choose_period(
    window: Window,
    n_queries: int = 1,
    *,
    now: Any = None,
    min_period: int = 60,
) -> int:
    """The smallest sensible GetMetricData period (seconds) for a window.

    It respects the retention tiers (multiples of 60 s up to 15 days back, 300 s up to 63
    days, 3600 s beyond) and the cap of 100,800 datapoints in one call of up to 500 queries.

    Parameters
    ----------
    window
        The window to cover.
    n_queries
        How many metric queries share one call (at most 500 count per call).
    now
        The reference "now" for the retention tiers.
    min_period
        Never choose less than this (e.g. 3600 for hourly rules).

    Examples
    --------
    >>> w = parse_window("7d", now="2026-11-28T00:00:00Z")
    >>> choose_period(w, 20, now="2026-11-28T00:00:00Z")
    300
    >>> choose_period(w, 20, now="2026-11-28T00:00:00Z", min_period=3600)
    3600
    """
    ref = parse_time(now) if now is not None else utcnow()
    base = _tier_base(window.start, ref)
    per_call = max(1, min(int(n_queries), MAX_QUERIES_PER_CALL))
    seconds = window.duration.total_seconds()
    floor = max(base, int(min_period))
    for period in _NICE_PERIODS:
        if period < floor or period % base:
            continue
        if per_call * math.ceil(seconds / period) <= MAX_DATAPOINTS_PER_CALL:
            return period
    # Longer than any nice period allows: whole days, enough of them to fit the cap.
    days = math.ceil(per_call * seconds / 86400 / MAX_DATAPOINTS_PER_CALL)
    return max(days, 1) * 86400
