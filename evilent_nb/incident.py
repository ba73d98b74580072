"""Incident analysis: when errors began, what changed just before, how bad it is, who is paged.

- :func:`error_onset` finds when errors departed from their baseline, from metrics or,
  when those are missing, from log events.
- :func:`suspected_triggers` lists the deploys and configuration changes shortly before
  that onset, closest first.
- :func:`classify_incident` turns what the incident report gathered into P0-P3 with
  reasons, following the runbook's severity table.
- :func:`escalation_status` applies the runbook's response times and escalation table.
- :func:`incident_findings` writes it all as findings (``incident_severity``,
  ``suspected_trigger``, ``top_error``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .frames import UTC_TS, typed_frame
from .rules import findings_frame, severity_rank
from .timeframe import Window, parse_time

__all__ = [
    "TRIGGERS_SCHEMA",
    "Reason",
    "classify_incident",
    "error_onset",
    "error_series",
    "escalation_status",
    "incident_findings",
    "suspected_triggers",
]

#: Columns of :func:`suspected_triggers`.
TRIGGERS_SCHEMA: dict[str, str] = {
    "time": UTC_TS,
    "kind": "string",
    "resource": "string",
    "stack": "string",
    "detail": "string",
    "minutes_before_onset": "float64",
}

# Stack-level statuses that mark a deploy: an *_IN_PROGRESS opens it, a *_COMPLETE closes it.
_DEPLOY_START = {"UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS"}
_DEPLOY_END = {"UPDATE_COMPLETE", "CREATE_COMPLETE"}


def _rulebook(rulebook: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if rulebook is None:
        from .config import default_rulebook

        return default_rulebook()
    return rulebook


def _ts(value: Any) -> pd.Timestamp:
    return pd.Timestamp(parse_time(value))


# -- onset ---------------------------------------------------------------------------------


def error_series(
    metrics: pd.DataFrame | None = None,
    *,
    log_events: pd.DataFrame | None = None,
    resource: str | Iterable[str] | None = None,
    window: Window | None = None,
    bucket: str | pd.Timedelta = "1min",
    pattern: str = "ERROR",
) -> pd.Series:
    """Errors per time bucket, zeros filled: the series :func:`error_onset` judges.

    From ``metrics`` (``AWS/Lambda`` ``Errors`` ``Sum``, summed over the chosen functions,
    at the data's own period) when it holds any such row; else from ``log_events`` (events
    whose ``level`` is ERROR or whose message contains ``pattern``, counted per ``bucket``).

    Parameters
    ----------
    metrics
        A :func:`evilent_nb.metrics.metric_data` frame.
    log_events
        A :func:`evilent_nb.logs.read_events` frame, used when metrics have no Errors.
    resource
        Function name(s) to keep (default: all).
    window
        Buckets cover it (so quiet minutes before the first error count as zeros).
    bucket
        Bucket length for log events (metrics keep their period).
    pattern
        Text that marks an error line.

    Returns
    -------
    pandas.Series
        float errors indexed by bucket start (UTC), named ``errors``; ``attrs["source"]``
        is ``"metrics"``, ``"logs"`` or ``"none"``.

    Examples
    --------
    >>> error_series(metrics_frame).attrs["source"]  # doctest: +SKIP
    'metrics'
    """
    names = [resource] if isinstance(resource, str) else (list(resource) if resource is not None else None)
    if metrics is not None and not metrics.empty:
        sel = metrics[(metrics["namespace"] == "AWS/Lambda") & (metrics["metric"] == "Errors")
                      & (metrics["stat"] == "Sum")].dropna(subset=["timestamp", "value"])
        if names is not None:
            sel = sel[sel["resource"].isin(names)]
        if not sel.empty:
            sums = sel.groupby("timestamp")["value"].sum().sort_index()
            diffs = sums.index.to_series().diff().dropna()
            diffs = diffs[diffs > pd.Timedelta(0)]
            step = diffs.min() if len(diffs) else None
            return _fill(sums, step, window, "metrics")
    if log_events is not None and not log_events.empty:
        ev = log_events.dropna(subset=["timestamp"])
        first_seen = ev["timestamp"].min()  # any line: the quiet time before the first error
        if names is not None and "log_group" in ev:
            groups = {f"/aws/lambda/{n}" for n in names} | set(names)
            ev = ev[ev["log_group"].isin(groups)]
        level = ev["level"].fillna("").astype(str).str.upper() if "level" in ev else pd.Series("", index=ev.index)
        message = ev["message"].fillna("").astype(str)
        ev = ev[(level == "ERROR") | message.str.contains(pattern, regex=False)]
        if not ev.empty:
            step = pd.Timedelta(bucket)
            counts = ev.groupby(ev["timestamp"].dt.floor(step)).size().astype("float64").sort_index()
            if window is None and first_seen.floor(step) < counts.index.min():
                counts.loc[first_seen.floor(step)] = 0.0
                counts = counts.sort_index()
            return _fill(counts, step, window, "logs")
    empty = pd.Series([], dtype="float64", index=pd.DatetimeIndex([], tz="UTC"), name="errors")
    empty.attrs["source"] = "none"
    return empty


def _fill(counts: pd.Series, step: pd.Timedelta | None, window: Window | None, source: str) -> pd.Series:
    if step is not None:
        start, end = counts.index.min(), counts.index.max()
        if window is not None:
            # align the window's edges to the series' own grid
            first = _ts(window.start)
            start = min(start, start - ((start - first) // step) * step)
            end = max(end, end + ((_ts(window.end) - end - pd.Timedelta(1, "ns")) // step) * step)
        counts = counts.reindex(pd.date_range(start, end, freq=step), fill_value=0.0)
    out = counts.astype("float64").rename("errors")
    out.index.name = "timestamp"
    out.attrs["source"] = source
    return out


def error_onset(
    metrics: pd.DataFrame | None = None,
    *,
    log_events: pd.DataFrame | None = None,
    resource: str | Iterable[str] | None = None,
    window: Window | None = None,
    baseline: str | pd.Timedelta = "60min",
    sigmas: float = 3.0,
    min_increase: float = 1.0,
    sustain: str | pd.Timedelta = "3min",
    min_baseline: int = 3,
    bucket: str | pd.Timedelta = "1min",
    pattern: str = "ERROR",
) -> pd.Timestamp | None:
    """When errors departed from their baseline.

    The rule, over the series of :func:`error_series` (errors per bucket, zeros filled):

    1. for each bucket ``t``, the baseline is the buckets in ``[t - baseline, t)`` (at
       least the ``min_baseline`` buckets before ``t``, for coarse series); its mean ``m``
       and population standard deviation ``s``. A bucket with fewer than ``min_baseline``
       buckets before it is not judged: errors already there when the series starts have
       no baseline to depart from (widen the window to see them begin);
    2. ``t`` departs when ``errors[t] >= m + max(sigmas * s, min_increase)``: at least
       ``min_increase`` more errors than usual, and far outside the usual noise;
    3. it is the onset when the errors are sustained: the buckets that follow within
       ``sustain`` of ``t``'s start (at least the next one) each still have more errors
       than ``m`` (a lone blip is not an onset); buckets past the series' end are not
       required;
    4. the onset is the first such bucket's start.

    Parameters
    ----------
    metrics
        A metric_data frame; its ``AWS/Lambda`` ``Errors`` ``Sum`` rows are used.
    log_events
        Used when ``metrics`` is missing, holds no Errors rows, or shows no onset (hourly
        datapoints in a 3 h window leave no baseline). Without ``window``, the log series
        starts at its first line of any level (the quiet time before the errors).
    resource
        Function name(s) to consider (default: all in the frame).
    window
        The incident window, so that quiet buckets before the first error count.
    baseline
        How far back the baseline reaches.
    sigmas, min_increase, sustain, min_baseline
        See the rule above.
    bucket
        Bucket length for log events (metrics keep their period).
    pattern
        Text marking an error line in log events.

    Returns
    -------
    pandas.Timestamp or None
        The onset (UTC), or None when errors never departed from their baseline.

    Examples
    --------
    >>> error_onset(metrics_frame, window=window)  # doctest: +SKIP
    Timestamp('2026-11-28 09:05:00+0000', tz='UTC')
    """
    options = {"resource": resource, "window": window, "bucket": bucket, "pattern": pattern}
    series = error_series(metrics, log_events=log_events, **options)
    rule = {"baseline": pd.Timedelta(baseline), "sigmas": sigmas, "min_increase": min_increase,
            "sustain": pd.Timedelta(sustain), "min_baseline": min_baseline}
    onset = _first_departure(series, **rule)
    if onset is None and series.attrs.get("source") == "metrics" and log_events is not None:
        # metrics too coarse for a baseline (e.g. hourly in a 3 h window): the log lines may tell
        onset = _first_departure(error_series(None, log_events=log_events, **options), **rule)
    return onset


def _first_departure(
    series: pd.Series,
    *,
    baseline: pd.Timedelta,
    sigmas: float,
    min_increase: float,
    sustain: pd.Timedelta,
    min_baseline: int,
) -> pd.Timestamp | None:
    if series.empty:
        return None
    span = baseline
    times = series.index
    steps = times.to_series().diff().dropna()
    step = steps[steps > pd.Timedelta(0)].min() if len(steps) else None
    follow = max(math.ceil(sustain / step) - 1, 1) if step is not None and not pd.isna(step) else 1
    values = series.to_numpy(dtype="float64")
    for i, t in enumerate(times):
        need = max(int(min_baseline), 1)
        if i < need:
            continue
        # the last `baseline` of time, but never fewer than `min_baseline` buckets
        lo = min(int(times.searchsorted(t - span, side="left")), i - need)
        base = values[lo:i]
        m, s = float(base.mean()), float(base.std())
        if values[i] < m + max(sigmas * s, min_increase):
            continue
        following = values[i + 1: i + 1 + follow]
        if (following > m).all():
            return pd.Timestamp(t).tz_convert("UTC")
    return None


# -- triggers ------------------------------------------------------------------------------


def _deploys(stack_events: pd.DataFrame) -> list[dict[str, Any]]:
    """Pair each stack's own IN_PROGRESS with the COMPLETE that follows: one row per deploy."""
    if stack_events is None or stack_events.empty:
        return []
    own = stack_events[(stack_events["logical_id"] == stack_events["stack"])
                       & stack_events["status"].isin(_DEPLOY_START | _DEPLOY_END)
                       & stack_events["timestamp"].notna()]
    deploys: list[dict[str, Any]] = []
    for stack, events in own.sort_values("timestamp", kind="stable").groupby("stack", sort=True):
        open_: dict[str, Any] | None = None
        for ev in events.itertuples(index=False):
            if ev.status in _DEPLOY_START:
                if open_ is not None:  # a start without its end (events cut): keep it alone
                    deploys.append(open_)
                open_ = {"stack": stack, "start": ev.timestamp, "end": None, "statuses": [ev.status]}
            elif open_ is not None and ev.status.split("_")[0] == open_["statuses"][0].split("_")[0]:
                open_["end"] = ev.timestamp
                open_["statuses"].append(ev.status)
                deploys.append(open_)
                open_ = None
            else:  # a COMPLETE whose start is before the events read
                deploys.append({"stack": stack, "start": None, "end": ev.timestamp, "statuses": [ev.status]})
        if open_ is not None:
            deploys.append(open_)
    return deploys


def suspected_triggers(
    onset: Any,
    stack_events: pd.DataFrame | None,
    function_changes: pd.DataFrame | None = None,
    lookback: str | pd.Timedelta = "60min",
    *,
    estate: Any = None,
) -> pd.DataFrame:
    """Deploys and configuration changes within ``lookback`` before the error onset, closest first.

    - A deploy is the stack's own ``UPDATE_IN_PROGRESS``/``CREATE_IN_PROGRESS`` event paired
      with the ``*_COMPLETE`` that follows (one row per deploy); its time is when it began
      (or its completion when the start was not read). Rollbacks are not triggers.
    - A function change is a function's ``last_modified``. One that falls inside a deploy of
      its own stack is that deploy (it is not listed twice); any other is a
      ``config change`` (e.g. a console or CLI update).
    - A change counts when ``onset - lookback <= time <= onset``. A change after the onset
      is not a trigger.

    Parameters
    ----------
    onset
        From :func:`error_onset`; ``None`` gives an empty frame.
    stack_events
        From :func:`evilent_nb.inventory.stack_events` (one or several stacks).
    function_changes
        The functions frame (:func:`evilent_nb.inventory.functions`): ``name``, ``last_modified``.
    lookback
        How far before the onset a change counts (the rulebook's ``incident.lookback_min``).
    estate
        Maps a function to its stack (for the ``stack`` column and deploy matching).

    Returns
    -------
    pandas.DataFrame
        ``time, kind ("deploy" | "config change"), resource (stack or function), stack,
        detail, minutes_before_onset``; sorted by ``minutes_before_onset``.

    Examples
    --------
    >>> suspected_triggers(onset, events, fns, "60min", estate=estate)  # doctest: +SKIP
    """
    if onset is None or (isinstance(onset, float) and np.isnan(onset)):
        return typed_frame([], TRIGGERS_SCHEMA)
    at = _ts(onset)
    earliest = at - pd.Timedelta(lookback)
    rows: list[dict[str, Any]] = []
    deploys = _deploys(stack_events) if stack_events is not None else []
    for d in deploys:
        when = d["start"] if d["start"] is not None else d["end"]
        if not earliest <= when <= at:
            continue
        if d["start"] is not None and d["end"] is not None:
            detail = (f"{d['statuses'][0]} at {when:%H:%M:%S} UTC, {d['statuses'][-1]} at "
                      f"{d['end']:%H:%M:%S} UTC")
        elif d["start"] is not None:
            detail = f"{d['statuses'][0]} at {when:%H:%M:%S} UTC, not complete"
        else:
            detail = f"{d['statuses'][0]} at {when:%H:%M:%S} UTC"
        rows.append({"time": when, "kind": "deploy", "resource": d["stack"], "stack": d["stack"],
                     "detail": detail})
    if function_changes is not None and not function_changes.empty:
        for fn in function_changes.dropna(subset=["last_modified"]).itertuples(index=False):
            when = fn.last_modified
            if not earliest <= when <= at:
                continue
            stack = _stack_of(estate, fn.name)
            if any(d["stack"] == stack and _during(d, when, at) for d in deploys):
                continue  # the deploy updated it
            rows.append({"time": when, "kind": "config change", "resource": fn.name, "stack": stack,
                         "detail": f"function {fn.name} last modified at {when:%H:%M:%S} UTC outside a stack deploy"})
    frame = typed_frame(rows, TRIGGERS_SCHEMA)
    # To a tenth of a minute: the onset itself is only known to the minute.
    frame["minutes_before_onset"] = ((at - frame["time"]) / pd.Timedelta(minutes=1)).round(1).astype("float64")
    return frame.sort_values(["minutes_before_onset", "resource"], kind="stable").reset_index(drop=True)


def _during(deploy: Mapping[str, Any], when: pd.Timestamp, onset: pd.Timestamp) -> bool:
    start = deploy["start"] if deploy["start"] is not None else deploy["end"]
    end = deploy["end"] if deploy["end"] is not None else onset  # still running
    return start <= when <= end


def _stack_of(estate: Any, function: str) -> str:
    if estate is None:
        return ""
    name = estate.service_of(function)
    return estate.service(name).stack if name else ""


# -- classification ----------------------------------------------------------------------------


class Reason(str):
    """One reason for a severity: a sentence, plus the severity it supports and its playbook.

    It is a ``str`` (it prints, compares and serialises as its sentence).

    Examples
    --------
    >>> r = Reason("/health answered HTTP 503", "P0", "api-down")
    >>> (r, r.severity, r.playbook)
    ('/health answered HTTP 503', 'P0', 'api-down')
    """

    severity: str
    playbook: str

    def __new__(cls, text: str, severity: str, playbook: str = "") -> Reason:
        obj = super().__new__(cls, text)
        obj.severity = severity
        obj.playbook = playbook
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle keep the attributes
        return (Reason, (str(self), self.severity, self.playbook))


def _pct(rate: float) -> str:
    return f"{round(rate * 100, 1):g} %"


def classify_incident(
    *,
    health_ok: bool | None = None,
    health_detail: str | None = None,
    rate_5xx_max: float | None = None,
    error_rate_max: float | None = None,
    errors_per_hour_max: float | None = None,
    db_available: bool | None = None,
    db_status: str | None = None,
    latency_ms_max: float | None = None,
    declared: str | None = None,
    rulebook: Mapping[str, Any] | None = None,
) -> tuple[str, list[Reason]]:
    """The severity the evidence supports, with its reasons, per the runbook's table.

    - P0 (service down): ``/health`` does not answer 2xx; every request fails with 5xx
      (rate >= 100 %); every Lambda invocation fails.
    - P1 (critical functionality affected): more than 100 errors in an hour; 5xx above
      10 %; Lambda errors above 10 % of invocations; the DB not available.
    - P2 (degraded): average duration above 5000 ms; 5xx above 5 %; more than 10 errors
      in an hour.
    - P3 (minor): none of the above.

    Every argument is optional: ``None`` means "not measured" and is no evidence either
    way. Thresholds come from the rulebook (``lambda_errors``, ``apigw_5xx_rate``,
    ``lambda_duration``, ``incident_classes``).

    A declared severity (the incident report's ``severity`` parameter) does not change the
    result: the evidence decides. It is recorded as a reason when it differs, so that the
    report shows both (e.g. "declared P1; the evidence supports P3").

    Parameters
    ----------
    health_ok
        Whether ``/health`` answered 2xx (``False`` = failing).
    health_detail
        What the probe saw (e.g. "answered HTTP 503"), for the reason's text.
    rate_5xx_max
        Worst API Gateway 5XXError / Count over the window (fraction).
    error_rate_max
        Worst Lambda Errors / Invocations (fraction).
    errors_per_hour_max
        Worst hourly Errors Sum.
    db_available
        Whether the DB instance is ``available``.
    db_status
        Its status, for the reason's text.
    latency_ms_max
        Worst average Lambda duration (ms).
    declared
        A declared severity, P0-P3.
    rulebook
        ``Config.rulebook``.

    Returns
    -------
    tuple
        ``(severity, reasons)``: every condition that held as a :class:`Reason`, most
        severe first (the first ones are at ``severity``); a declared severity that
        differs adds a last reason.

    Examples
    --------
    >>> classify_incident(rate_5xx_max=1.0)
    ('P0', ['100 % of API requests failed with 5xx'])
    >>> classify_incident(errors_per_hour_max=150)[0]
    'P1'
    """
    rb = _rulebook(rulebook)
    errs, apigw, dur = rb["lambda_errors"], rb["apigw_5xx_rate"], rb["lambda_duration"]
    classes = rb.get("incident_classes", {})
    reasons: list[Reason] = []
    if health_ok is False:
        reasons.append(Reason(f"the service is down (/health {health_detail or 'does not answer 2xx'})",
                              "P0", "api-down"))
    if rate_5xx_max is not None and not np.isnan(rate_5xx_max):
        if rate_5xx_max >= apigw["p0_at_or_above"]:
            reasons.append(Reason(f"{_pct(rate_5xx_max)} of API requests failed with 5xx", "P0", "api-down"))
        elif rate_5xx_max > apigw["p1_above"]:
            reasons.append(Reason(f"{_pct(rate_5xx_max)} of API requests failed with 5xx "
                                  f"(above {_pct(apigw['p1_above'])})", "P1", "high-error-rate"))
        elif rate_5xx_max > apigw["p2_above"]:
            reasons.append(Reason(f"{_pct(rate_5xx_max)} of API requests failed with 5xx "
                                  f"(above {_pct(apigw['p2_above'])})", "P2", "high-error-rate"))
    if error_rate_max is not None and not np.isnan(error_rate_max):
        if error_rate_max >= classes.get("p0_error_rate_at_or_above", 1.0):
            reasons.append(Reason(f"{_pct(error_rate_max)} of Lambda invocations failed", "P0", "api-down"))
        elif error_rate_max > classes.get("p1_error_rate_above", 0.10):
            reasons.append(Reason(f"{_pct(error_rate_max)} of Lambda invocations failed "
                                  f"(above {_pct(classes.get('p1_error_rate_above', 0.10))})",
                                  "P1", "high-error-rate"))
    if errors_per_hour_max is not None and not np.isnan(errors_per_hour_max):
        if errors_per_hour_max > errs["p1_above"]:
            reasons.append(Reason(f"{errors_per_hour_max:,.0f} errors in one hour (above {errs['p1_above']}/h)",
                                  "P1", "high-error-rate"))
        elif errors_per_hour_max > errs["p2_above"]:
            reasons.append(Reason(f"{errors_per_hour_max:,.0f} errors in one hour (above {errs['p2_above']}/h)",
                                  "P2", "high-error-rate"))
    if db_available is False:
        reasons.append(Reason(f"the database is {db_status or 'not available'}", "P1", "db-connection"))
    if latency_ms_max is not None and not np.isnan(latency_ms_max) and latency_ms_max > dur["p2_above_ms"]:
        reasons.append(Reason(f"average duration {latency_ms_max:,.0f} ms (above {dur['p2_above_ms']} ms)",
                              "P2", "high-latency"))
    reasons.sort(key=lambda r: severity_rank(r.severity))  # stable: the order above breaks ties
    if reasons:
        severity = reasons[0].severity
    else:
        severity = "P3"
        reasons.append(Reason("nothing above the runbook's thresholds, a minor issue at most", "P3"))
    if declared is not None:
        declared = str(declared).upper()
        severity_rank(declared)  # validates
        if declared != severity:
            reasons.append(Reason(f"declared {declared}; the evidence supports {severity}", declared))
    return severity, reasons


# -- escalation ----------------------------------------------------------------------------------


def escalation_status(
    severity: str,
    started_at: Any,
    now: Any,
    *,
    responded_at: Any = None,
    rulebook: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Where an unresolved incident stands in the runbook's escalation table.

    - Response time: P0 15 min, P1 1 h, P2 4 h, P3 24 h (``response_minutes``). The
      deadline is ``started_at`` + that; it is breached when ``now`` (or ``responded_at``,
      when someone responded) is past it, strictly.
    - Escalation: the on-call engineer (level 1) first; a P1 unresolved for more than
      60 min goes to the senior engineer (level 2), a P0 unresolved for more than 30 min
      to the tech lead (level 3) (``escalation.after``; strictly more).
    - Channel: #incidents for P0-P1, #backend-support for P2-P3 (``channels``).

    Parameters
    ----------
    severity
        P0-P3.
    started_at
        When the incident began (its onset, or when it was declared).
    now
        The reference time.
    responded_at
        When someone responded, if known.
    rulebook
        ``Config.rulebook``.

    Returns
    -------
    dict
        ``severity, level, who, contact, channel, open_minutes, response_minutes,
        response_deadline, breached, next_level, next_who, next_escalation_at``
        (the ``next_*`` are None when no further escalation is due).

    Examples
    --------
    >>> s = escalation_status("P0", "2026-11-28T09:00:00Z", "2026-11-28T09:40:00Z")
    >>> s["who"], s["breached"]
    ('tech lead', True)
    """
    rb = _rulebook(rulebook)
    severity = str(severity).upper()
    severity_rank(severity)
    start, ref = _ts(started_at), _ts(now)
    response = float(rb["response_minutes"][severity])
    deadline = start + pd.Timedelta(minutes=response)
    checked = _ts(responded_at) if responded_at is not None else ref
    people = {int(lv["level"]): lv for lv in rb["escalation"]["levels"]}
    open_minutes = (ref - start) / pd.Timedelta(minutes=1)
    level, next_step = 1, None
    for step in sorted(rb["escalation"]["after"].get(severity) or [], key=lambda s: s["minutes"]):
        if open_minutes > float(step["minutes"]):
            level = max(level, int(step["level"]))
        elif next_step is None:
            next_step = step
    return {
        "severity": severity,
        "level": level,
        "who": people[level]["who"],
        "contact": people[level].get("contact", ""),
        "channel": rb["channels"][severity],
        "open_minutes": float(open_minutes),
        "response_minutes": response,
        "response_deadline": deadline,
        "breached": bool(checked > deadline),
        "next_level": int(next_step["level"]) if next_step else None,
        "next_who": people[int(next_step["level"])]["who"] if next_step else None,
        "next_escalation_at": start + pd.Timedelta(minutes=float(next_step["minutes"])) if next_step else None,
    }


# -- findings ------------------------------------------------------------------------------------


def incident_findings(
    service: str,
    *,
    severity: str,
    reasons: Iterable[str],
    triggers: pd.DataFrame | None = None,
    top_signature: Mapping[str, Any] | pd.Series | pd.DataFrame | str | None = None,
    onset: Any = None,
    at: Any = None,
    resource: str | None = None,
    log_group: str | None = None,
    playbook: str | None = None,
) -> pd.DataFrame:
    """The incident report's findings.

    - ``incident_severity`` (always one): resource the service, ``at`` the onset (else
      ``at``), message the severity's reasons.
    - ``suspected_trigger``, one per trigger row: resource its stack or function, ``value``
      the minutes before onset, severity the incident's.
    - ``top_error`` when a signature is given: resource its log group, ``value`` its count,
      ``message`` the signature itself, severity the incident's.

    Parameters
    ----------
    service
        The service's short name.
    severity, reasons
        From :func:`classify_incident`.
    triggers
        From :func:`suspected_triggers`.
    top_signature
        The first row of :func:`evilent_nb.logs.error_signatures` (or that frame, or the
        signature text).
    onset
        From :func:`error_onset`.
    at
        When no onset was found: the time to stamp (e.g. the window's start).
    resource
        The ``incident_severity`` resource (default: the service).
    log_group
        The ``top_error`` resource when the signature does not name one.
    playbook
        Default: the playbook of the first reason at ``severity`` (when reasons are
        :class:`Reason`), else none.

    Returns
    -------
    pandas.DataFrame
        Findings (``SCHEMAS["findings"]``), sorted.

    Examples
    --------
    >>> sev, why = classify_incident(errors_per_hour_max=150)
    >>> incident_findings("user", severity=sev, reasons=why).check.tolist()
    ['incident_severity']
    """
    severity_rank(severity)
    reasons = list(reasons)
    if playbook is None:
        playbook = next((getattr(r, "playbook", "") for r in reasons
                         if getattr(r, "severity", None) == severity and getattr(r, "playbook", "")), "")
    when = _ts(onset) if onset is not None else (_ts(at) if at is not None else pd.NaT)
    main = [r for r in reasons if getattr(r, "severity", severity) == severity] or reasons
    rest = [r for r in reasons if r not in main]
    # Sentences, not nested parentheses: the reasons already carry their own.
    text = f"{severity}: " + "; ".join(str(r) for r in main) + "."
    if rest:
        text += " Also: " + "; ".join(str(r) for r in rest) + "."
    text += f" Errors began {when:%Y-%m-%d %H:%M} UTC." if onset is not None else " No error onset was found."
    rows: list[dict[str, Any]] = [{
        "severity": severity, "check": "incident_severity", "service": service,
        "resource": resource or service, "at": when, "message": text, "playbook": playbook,
    }]
    if triggers is not None:
        for t in triggers.itertuples(index=False):
            mins = float(t.minutes_before_onset)
            rows.append({
                "severity": severity, "check": "suspected_trigger", "service": service,
                "resource": t.resource, "value": mins, "at": t.time,
                "message": f"{t.kind} of {t.resource} {mins:.0f} min before the errors began ({t.detail})",
                "playbook": playbook,
            })
    sig = _signature(top_signature)
    if sig is not None:
        rows.append({
            "severity": severity, "check": "top_error", "service": service,
            "resource": sig.get("log_group") or log_group or "",
            "value": sig.get("count"), "at": sig.get("first_seen"),
            "message": str(sig["signature"]), "playbook": playbook,
        })
    return findings_frame(rows)


def _signature(top: Any) -> dict[str, Any] | None:
    if top is None:
        return None
    if isinstance(top, str):
        return {"signature": top} if top else None
    if isinstance(top, pd.DataFrame):
        if top.empty:
            return None
        top = top.iloc[0]
    out = {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in dict(top).items()}
    return out if out.get("signature") else None
