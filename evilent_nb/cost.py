"""Cost Explorer in one pull, and everything the cost review needs derived from it.

Cost Explorer charges 0.01 USD per request, every page included, so a report calls
:func:`cost_and_usage` once and derives the month-to-date, the run-rate forecast, the
week-over-week change and the anomalies client-side (:func:`month_to_date`,
:func:`run_rate_forecast`, :func:`week_over_week`, :func:`anomalies`), with no further
requests.

The derived functions group by the frame's ``service`` column; a frame without one (an
ungrouped pull) counts as one service named ``total``.

AWS reference: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetCostAndUsage.html
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd

from . import aws
from .exceptions import ParameterError
from .frames import SCHEMAS, UTC_TS, snake, typed_frame
from .timeframe import Window, parse_time, parse_window, utcnow

__all__ = [
    "anomalies",
    "cost_and_usage",
    "month_to_date",
    "run_rate_forecast",
    "week_over_week",
]

_GRANULARITIES = ("DAILY", "MONTHLY", "HOURLY")
_GROUP_TYPES = ("TAG", "COST_CATEGORY")  # prefixed as "TAG:Key"; anything else is a DIMENSION
_MAX_GROUP_BY = 2
#: Cost Explorer keeps about 13 months of history.
_CE_MAX_AGE = timedelta(days=400)
_DAY = pd.Timedelta(days=1)
_TOTAL = "total"


def _group_definitions(group_by: str | Iterable[str] | None) -> list[dict[str, str]]:
    specs = [group_by] if isinstance(group_by, str) else list(group_by or ())
    if len(specs) > _MAX_GROUP_BY:
        raise ParameterError(f"Cost Explorer groups by at most {_MAX_GROUP_BY} keys, got {specs}")
    defs = []
    for spec in specs:
        kind, sep, key = str(spec).partition(":")
        if sep and kind.upper() in _GROUP_TYPES and key:
            defs.append({"Type": kind.upper(), "Key": key})
        elif not sep and spec:
            defs.append({"Type": "DIMENSION", "Key": str(spec).upper()})
        else:
            raise ParameterError(f"bad group_by {spec!r}: use a dimension (SERVICE), TAG:Key or COST_CATEGORY:Name")
    cols = [snake(d["Key"]) for d in defs]
    if len(set(cols)) != len(cols):
        raise ParameterError(f"group_by {specs} would give two columns named {cols[0]!r}")
    return defs


def _time_period(
    window: Window, granularity: str, now: pd.Timestamp
) -> tuple[str, str, pd.Timestamp, pd.Timestamp]:
    """Cost Explorer's TimePeriod: whole days (hours for HOURLY), Start inclusive, End exclusive.

    End is never later than tomorrow (``now``'s day + 1): a window may end up to an hour
    ahead, and near midnight its day rounds up to the day after tomorrow, which on the last
    day of a month AWS refuses ("end date past the beginning of next month").
    """
    unit = "h" if granularity == "HOURLY" else "D"
    start = pd.Timestamp(window.start).floor(unit)
    end = pd.Timestamp(window.end).ceil(unit)  # an end inside a day includes that day
    end = max(min(end, now.floor("D") + _DAY), start + pd.Timedelta(1, unit=unit))
    fmt = "%Y-%m-%dT%H:%M:%SZ" if granularity == "HOURLY" else "%Y-%m-%d"
    return start.strftime(fmt), end.strftime(fmt), start, end


def _key_value(key: str, definition: dict[str, str]) -> str:
    # Tags and cost categories come back as "Key$Value" ("Key$" when untagged).
    if definition["Type"] != "DIMENSION":
        prefix = f"{definition['Key']}$"
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def cost_and_usage(
    window: Window | str,
    *,
    granularity: str = "DAILY",
    group_by: str | Iterable[str] | None = ("SERVICE",),
    metric: str = "UnblendedCost",
    now: Any = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Costs per period and group, in one GetCostAndUsage pull (every page followed).

    The window is widened to whole days (whole hours for ``HOURLY``): ``Start`` is the day
    the window starts in, ``End`` (exclusive) the day after the one it ends in, unless it
    ends exactly at midnight, and never later than tomorrow (what Cost Explorer accepts).
    Rows outside that period are dropped.

    Parameters
    ----------
    window
        A :class:`~evilent_nb.timeframe.Window` or a spec such as ``35d``.
    granularity
        ``DAILY``, ``MONTHLY`` or ``HOURLY``.
    group_by
        Up to two keys: dimensions (``SERVICE``, ``LINKED_ACCOUNT``, ``USAGE_TYPE`` ...),
        ``TAG:<key>`` or ``COST_CATEGORY:<name>``. Empty for the ungrouped ``Total``.
    metric
        ``UnblendedCost``, ``BlendedCost``, ``AmortizedCost``, ``UsageQuantity`` ...
    now
        The reference "now" (default: the current time): ``End`` is at most its day + 1.
    boto3_session
        Session to use; default the standard chain.

    Returns
    -------
    pandas.DataFrame
        ``start``, ``end`` (UTC), one ``string`` column per group key, snake_case
        (``service``; a tag key ``Environment`` gives ``environment``, holding the tag's
        value, ``""`` when untagged), then ``amount`` (float), ``unit``, ``estimated``
        (bool: the period is not final). Sorted by start and the group keys. ``attrs``:
        ``time_period`` (the Start/End asked), ``granularity``, ``metric``, ``group_by``.

    Raises
    ------
    ParameterError
        Unknown granularity, more than two group keys, a malformed key.
    DataSourceError
        A request failed past its retries (source ``ce.GetCostAndUsage``).

    Examples
    --------
    >>> cost = cost_and_usage("35d")                     # doctest: +SKIP
    >>> cost.groupby("service")["amount"].sum()          # doctest: +SKIP
    """
    granularity = str(granularity).upper()
    if granularity not in _GRANULARITIES:
        raise ParameterError(f"bad granularity {granularity!r}: use one of {', '.join(_GRANULARITIES)}")
    defs = _group_definitions(group_by)
    ref = parse_time(now) if now is not None else utcnow()
    win = window if isinstance(window, Window) else parse_window(window, now=ref, max_age=_CE_MAX_AGE)
    start_s, end_s, period_start, period_end = _time_period(win, granularity, pd.Timestamp(ref))
    key_cols = [snake(d["Key"]) for d in defs]

    request: dict[str, Any] = {
        "TimePeriod": {"Start": start_s, "End": end_s},
        "Granularity": granularity,
        "Metrics": [metric],
    }
    if defs:
        request["GroupBy"] = defs

    ce = aws.client("ce", boto3_session)
    rows: list[dict[str, Any]] = []
    token: str | None = None
    # No paginator exists for GetCostAndUsage: this is the one NextPageToken loop.
    while True:
        with aws.translate_errors("ce.GetCostAndUsage"):
            page = ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
        for result in page.get("ResultsByTime") or ():
            span = result.get("TimePeriod") or {}
            base = {
                "start": span.get("Start"),
                "end": span.get("End"),
                "estimated": bool(result.get("Estimated", False)),
            }
            if defs:
                for group in result.get("Groups") or ():
                    value = (group.get("Metrics") or {}).get(metric)
                    if value is None:
                        continue
                    keys = list(group.get("Keys") or ())
                    row = {**base, "amount": value.get("Amount"), "unit": value.get("Unit")}
                    for col, definition, key in zip(key_cols, defs, keys, strict=False):
                        row[col] = _key_value(str(key), definition)
                    rows.append(row)
            else:
                value = (result.get("Total") or {}).get(metric)
                if value is not None:
                    rows.append({**base, "amount": value.get("Amount"), "unit": value.get("Unit")})
        token = page.get("NextPageToken")
        if not token:
            break

    schema = {"start": UTC_TS, "end": UTC_TS, **dict.fromkeys(key_cols, "string"),
              **{k: v for k, v in SCHEMAS["cost"].items() if k not in ("start", "end")}}
    frame = typed_frame(rows, schema)
    # Only what was asked (AWS already does this; a stand-in may not).
    frame = frame[(frame["start"] >= period_start) & (frame["end"] <= period_end)]
    frame = frame.sort_values(["start", *key_cols], kind="stable").reset_index(drop=True)
    frame.attrs.update(
        time_period={"Start": start_s, "End": end_s},
        granularity=granularity,
        metric=metric,
        group_by=[f"{d['Type']}:{d['Key']}" if d["Type"] != "DIMENSION" else d["Key"] for d in defs],
    )
    return frame


# Client-side derivations -------------------------------------------------------------------


def _utc(now: Any) -> pd.Timestamp:
    return pd.Timestamp(parse_time(now))


def _with_service(cost: pd.DataFrame) -> pd.DataFrame:
    if "service" in cost.columns:
        return cost.assign(service=cost["service"].astype("string").fillna(""))
    return cost.assign(service=pd.Series(_TOTAL, index=cost.index, dtype="string"))


def _month_bounds(now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    month_start = now.floor("D").replace(day=1)
    days = calendar.monthrange(month_start.year, month_start.month)[1]
    return month_start, month_start + pd.Timedelta(days=days), days


def _between(cost: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """Rows whose period starts in ``[lo, hi)``."""
    return cost[(cost["start"] >= lo) & (cost["start"] < hi)]


def _per_service(cost: pd.DataFrame, name: str) -> pd.Series:
    return cost.groupby("service", observed=True)["amount"].sum().rename(name).astype("float64")


def month_to_date(cost: pd.DataFrame, *, now: Any) -> pd.DataFrame:
    """Spend per service since the first of ``now``'s month (UTC).

    Every row whose period starts in ``[first of the month, now)`` counts, today's
    partial (estimated) day included.

    Parameters
    ----------
    cost
        A :func:`cost_and_usage` frame (DAILY).
    now
        The reference time (reports pass their frozen "now").

    Returns
    -------
    pandas.DataFrame
        ``service``, ``amount``; sorted by amount, largest first.

    Examples
    --------
    >>> month_to_date(cost, now="2026-11-28T09:00:00Z")  # doctest: +SKIP
    """
    ref = _utc(now)
    month_start, _, _ = _month_bounds(ref)
    sums = _per_service(_between(_with_service(cost), month_start, ref), "amount").reset_index()
    out = typed_frame(sums, {"service": "string", "amount": "float64"})
    return out.sort_values(["amount", "service"], ascending=[False, True], kind="stable").reset_index(drop=True)


def run_rate_forecast(cost: pd.DataFrame, *, now: Any) -> dict[str, Any]:
    """Forecast the month's total from the month-to-date and the recent daily run rate.

    ``forecast = month_to_date + daily_run_rate * remaining_days``, where

    - ``month_to_date`` is the total of :func:`month_to_date` (today's partial day included);
    - ``daily_run_rate`` is the average daily spend (all services) over the last 7 complete
      days, ``[today - 7 d, today)``; when the frame starts later than that, over the
      complete days it covers (0 when it covers none);
    - ``remaining_days`` are the days of the month after today
      (``days_in_month - days_elapsed``, where ``days_elapsed`` counts the days of the month
      begun by ``now``, today included unless ``now`` is exactly midnight).

    Parameters
    ----------
    cost
        A :func:`cost_and_usage` frame (DAILY).
    now
        The reference time.

    Returns
    -------
    dict
        ``month_to_date``, ``daily_run_rate``, ``forecast`` (USD floats),
        ``days_elapsed``, ``remaining_days``, ``days_in_month`` (ints),
        ``month_start`` and ``month_end`` (UTC timestamps; ``month_end`` is the first
        instant of the next month, exclusive).

    Examples
    --------
    >>> run_rate_forecast(cost, now="2026-11-28T09:00:00Z")["forecast"]  # doctest: +SKIP
    """
    ref = _utc(now)
    today = ref.floor("D")
    month_start, month_end, days_in_month = _month_bounds(ref)
    frame = _with_service(cost)
    mtd = float(_between(frame, month_start, ref)["amount"].sum())
    covered_from = _coverage_start(cost)
    rate_start = max(today - 7 * _DAY, covered_from if covered_from is not None else today)
    covered_days = max(0, (today - rate_start).days)
    recent = float(_between(frame, rate_start, today)["amount"].sum())
    rate = recent / covered_days if covered_days else 0.0
    days_elapsed = (today - month_start).days + (1 if ref > today else 0)
    remaining = days_in_month - days_elapsed
    return {
        "month_to_date": mtd,
        "daily_run_rate": rate,
        "forecast": mtd + rate * remaining,
        "days_elapsed": days_elapsed,
        "remaining_days": remaining,
        "days_in_month": days_in_month,
        "month_start": month_start,
        "month_end": month_end,
    }


def _coverage_start(cost: pd.DataFrame) -> pd.Timestamp | None:
    """The first day the pull covered (its TimePeriod Start, else the earliest row)."""
    asked = (cost.attrs.get("time_period") or {}).get("Start")
    if asked:
        return pd.Timestamp(parse_time(asked)).floor("D")
    return None if cost.empty else pd.Timestamp(cost["start"].min()).floor("D")


def week_over_week(cost: pd.DataFrame, *, now: Any) -> pd.DataFrame:
    """Spend per service in the last 7 complete days against the 7 before.

    ``this_week`` is ``[today - 7 d, today)``, ``last_week`` ``[today - 14 d, today - 7 d)``
    (days start at 00:00 UTC; today, still running, is left out).

    Parameters
    ----------
    cost
        A :func:`cost_and_usage` frame (DAILY).
    now
        The reference time.

    Returns
    -------
    pandas.DataFrame
        ``service``, ``this_week``, ``last_week``, ``change_usd`` (this - last),
        ``change_pct`` (percent of last week; NaN when last week was 0); one row per
        service seen in either week, sorted by ``change_usd``, largest rise first.

    Examples
    --------
    >>> week_over_week(cost, now="2026-11-28T09:00:00Z")  # doctest: +SKIP
    """
    today = _utc(now).floor("D")
    frame = _with_service(cost)
    this = _per_service(_between(frame, today - 7 * _DAY, today), "this_week")
    last = _per_service(_between(frame, today - 14 * _DAY, today - 7 * _DAY), "last_week")
    both = pd.concat([this, last], axis=1).fillna(0.0)
    both["change_usd"] = both["this_week"] - both["last_week"]
    last_week = both["last_week"].where(both["last_week"] != 0)
    both["change_pct"] = both["change_usd"] / last_week * 100.0
    both.index.name = "service"
    schema = {"service": "string", "this_week": "float64", "last_week": "float64",
              "change_usd": "float64", "change_pct": "float64"}
    out = typed_frame(both.reset_index(), schema)
    return out.sort_values(["change_usd", "service"], ascending=[False, True], kind="stable").reset_index(drop=True)


def anomalies(
    cost: pd.DataFrame,
    *,
    baseline_days: int = 14,
    sigmas: float = 3.0,
    min_usd: float = 1.0,
    now: Any = None,
) -> pd.DataFrame:
    """Days on which a service cost far more than its trailing baseline.

    The rule, per service and per day ``d`` of a DAILY frame:

    - the baseline is that service's daily cost over the ``baseline_days`` days before
      ``d``, ``[d - baseline_days, d)``, a day without a row counting as 0; its mean and
      population standard deviation (ddof=0) are ``baseline_mean`` and ``baseline_std``;
    - ``threshold = max(baseline_mean + sigmas * baseline_std, min_usd)``;
    - ``d`` is an anomaly when ``amount > threshold`` (strictly: a day exactly at the
      threshold is not), i.e. above ``mean + sigmas * std`` *and* above ``min_usd``.

    A day is only judged when it is complete and final: days marked ``estimated`` are
    skipped, and so are days not yet over at ``now`` (when given). Days whose baseline
    reaches before the frame's first day are not judged either (no full baseline).

    Parameters
    ----------
    cost
        A :func:`cost_and_usage` frame with DAILY granularity (other rows are ignored).
    baseline_days
        Length of the trailing baseline.
    sigmas
        How many standard deviations above the mean counts as far.
    min_usd
        Never flag a day costing this much or less.
    now
        The reference time; days ending after it are incomplete and skipped.

    Returns
    -------
    pandas.DataFrame
        ``date`` (the day's start, UTC), ``service``, ``amount``, ``baseline_mean``,
        ``baseline_std``, ``threshold``; sorted by date and service.

    Examples
    --------
    >>> anomalies(cost, baseline_days=14, sigmas=3.0, min_usd=1.0)  # doctest: +SKIP
    """
    schema = {"date": UTC_TS, "service": "string", "amount": "float64",
              "baseline_mean": "float64", "baseline_std": "float64", "threshold": "float64"}
    frame = _with_service(cost)
    frame = frame[(frame["end"] - frame["start"]) == _DAY]
    if frame.empty or baseline_days < 1:
        return typed_frame([], schema)
    first_day = _coverage_start(cost)
    ref = _utc(now) if now is not None else None
    daily = frame.groupby(["service", "start"], observed=True).agg(
        amount=("amount", "sum"), estimated=("estimated", "any")
    )
    days = pd.date_range(first_day, frame["start"].max(), freq="D")
    rows = []
    for service, per_day in daily.groupby(level="service", observed=True):
        per_day = per_day.droplevel("service").reindex(days)
        amounts = per_day["amount"].fillna(0.0).to_numpy()
        for i, day in enumerate(days):
            if i < baseline_days or pd.isna(per_day["amount"].iloc[i]) or bool(per_day["estimated"].iloc[i]):
                continue
            if ref is not None and day + _DAY > ref:
                continue
            base = amounts[i - baseline_days : i]
            mean, std = float(np.mean(base)), float(np.std(base))
            threshold = max(mean + sigmas * std, float(min_usd))
            if amounts[i] > threshold:
                rows.append({"date": day, "service": service, "amount": float(amounts[i]),
                             "baseline_mean": mean, "baseline_std": std, "threshold": threshold})
    out = typed_frame(rows, schema)
    return out.sort_values(["date", "service"], kind="stable").reset_index(drop=True)

