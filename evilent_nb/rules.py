"""The runbook's thresholds applied to frames: findings with severities P0-P3.

Each check of DESIGN.md's table is one small function, ``check_<id>``, that takes frames
(and the rulebook, a dict as in ``evilent_nb/rulebook.yaml`` / ``Config.rulebook``) and
returns a findings frame (``SCHEMAS["findings"]``)::

    severity, check, service, resource, value, threshold, at, message, playbook

Conventions shared by every check:

- Boundaries follow the runbook's words: "above 100" is strictly greater, so exactly 100
  does not fire; the 5xx rate's "= 100 %" fires at a rate of 1.0.
- Hourly metric rules are judged hour by hour (datapoints are bucketed to the rule's
  period) and report ONE finding per resource: its worst hour (highest value, earliest on a
  tie); ``at`` is that hour's start and ``value``/``threshold`` are the numbers that fired.
  Datapoints coarser than an hour are judged by their average hourly rate.
- ``service`` is the estate's short name owning the resource, empty for account-level
  things (policies, cost, DB instances).
- ``playbook`` is one of ``api-down``, ``high-error-rate``, ``db-connection``,
  ``high-latency`` or empty.

The aggregators (:func:`health_findings`, :func:`cost_findings`,
:func:`maintenance_findings`) run the checks of one report and catch nothing: a source
that failed is the report's business (it passes ``None`` for it and adds
:func:`data_unavailable`).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .frames import SCHEMAS, typed_frame
from .timeframe import parse_time

__all__ = [
    "SEVERITIES",
    "at_or_above",
    "check_alarm_state",
    "check_api_health",
    "check_apigw_5xx_rate",
    "check_backup_objects_age",
    "check_cost_anomaly",
    "check_db_backup_age",
    "check_db_status",
    "check_deprecated_runtime",
    "check_lambda_duration",
    "check_lambda_errors",
    "check_lambda_invocations",
    "check_lambda_throttles",
    "check_log_errors",
    "check_log_retention",
    "check_monthly_cost",
    "check_stack_status",
    "check_stale_log_streams",
    "check_unused_policy",
    "cost_findings",
    "data_unavailable",
    "findings_frame",
    "health_findings",
    "maintenance_findings",
    "severity_rank",
    "status_of",
]

#: Most severe first.
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

# Which playbook a metric's alarm points to.
_ALARM_PLAYBOOKS = {
    "Errors": "high-error-rate",
    "5XXError": "high-error-rate",
    "Duration": "high-latency",
    "Latency": "high-latency",
    "DatabaseConnections": "db-connection",
}


# -- the findings frame ------------------------------------------------------------------


def severity_rank(severity: str) -> int:
    """0 for P0 ... 3 for P3.

    Raises
    ------
    ValueError
        For anything but ``P0``-``P3``.

    Examples
    --------
    >>> severity_rank("P1")
    1
    """
    try:
        return _RANK[str(severity).upper()]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}") from None


def findings_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame = ()) -> pd.DataFrame:
    """Typed findings, most severe first, then by time (no time last).

    Parameters
    ----------
    rows
        Records or frames with the findings columns; missing ones are null (``service`` and
        ``playbook`` become empty strings).

    Returns
    -------
    pandas.DataFrame
        ``severity, check, service, resource, value, threshold, at, message, playbook``.

    Examples
    --------
    >>> findings_frame([{"severity": "P3", "check": "x"}, {"severity": "P0", "check": "y"}]).check.tolist()
    ['y', 'x']
    """
    df = typed_frame(rows, "findings")
    for col in ("service", "playbook", "message", "resource"):
        df[col] = df[col].fillna("")
    if df.empty:
        return df
    bad = sorted(set(df["severity"].dropna()) - set(SEVERITIES))
    if bad or df["severity"].isna().any():
        raise ValueError(f"finding severities must be P0-P3, got {bad or ['<NA>']}")
    order = df.assign(_rank=df["severity"].map(_RANK))
    order = order.sort_values(["_rank", "at", "check", "resource"], kind="stable", na_position="last")
    return order.drop(columns="_rank").reset_index(drop=True)


def _concat(frames: Iterable[pd.DataFrame | None]) -> pd.DataFrame:
    parts = [f for f in frames if f is not None and not f.empty]
    if not parts:
        return findings_frame([])
    return findings_frame(pd.concat(parts, ignore_index=True))


def status_of(findings: pd.DataFrame | None) -> str:
    """The highest severity among the findings, or ``"OK"`` when there are none.

    Examples
    --------
    >>> status_of(findings_frame([{"severity": "P2"}, {"severity": "P1"}]))
    'P1'
    >>> status_of(findings_frame([]))
    'OK'
    """
    if findings is None or findings.empty:
        return "OK"
    return min(findings["severity"], key=severity_rank)


def at_or_above(findings: pd.DataFrame, level: str) -> pd.DataFrame:
    """The findings at ``level`` or more severe (``at_or_above(f, "P1")`` keeps P0 and P1).

    Examples
    --------
    >>> len(at_or_above(findings_frame([{"severity": "P0"}, {"severity": "P2"}]), "P1"))
    1
    """
    limit = severity_rank(level)
    if findings.empty:
        return findings.copy()
    keep = findings["severity"].map(_RANK) <= limit
    return findings[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def data_unavailable(source: str, error: BaseException | str) -> pd.DataFrame:
    """A source failed and the report went on without it: one P2 finding.

    Parameters
    ----------
    source
        The data source, e.g. ``cloudwatch.GetMetricData`` (becomes ``resource``).
    error
        The exception or its message.

    Returns
    -------
    pandas.DataFrame
        One finding, check ``data_unavailable``.

    Examples
    --------
    >>> data_unavailable("ce.GetCostAndUsage", "throttled").message[0]
    'ce.GetCostAndUsage could not be read (throttled); the report went on without it'
    """
    reason = str(error).strip() or type(error).__name__
    return findings_frame([{
        "severity": "P2",
        "check": "data_unavailable",
        "resource": source,
        "message": f"{source} could not be read ({reason}); the report went on without it",
    }])


# -- small helpers ---------------------------------------------------------------------


def _num(value: float) -> str:
    """12,500 / 6,200.5 / 0.25: integers without decimals, others to 2 significant places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _times(value: float, baseline: float) -> str:
    """ "12.6 times " when the ratio means something, else "above " (a zero baseline)."""
    if baseline is None or pd.isna(baseline) or float(baseline) <= 0:
        return "above "
    return f"{float(value) / float(baseline):.1f} times "


def _pct(rate: float) -> str:
    return f"{_num(round(rate * 100, 1))} %"


def _when(ts: Any) -> str:
    """``2026-11-28 03:00 UTC``."""
    if ts is None or pd.isna(ts):
        return "an unknown time"
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return "hour" if hours == 1 else f"{_num(hours)} hours"


def _service(estate: Any, resource: Any) -> str:
    if estate is None or resource is None or (not isinstance(resource, str) and pd.isna(resource)):
        return ""
    return estate.service_of(str(resource)) or ""


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def _rule(rulebook: Mapping[str, Any] | None, check: str) -> Mapping[str, Any]:
    if rulebook is None:
        from .config import default_rulebook

        rulebook = default_rulebook()
    return rulebook.get(check, {})


def _native_period_s(timestamps: pd.Series) -> float | None:
    uniq = np.sort(timestamps.dropna().unique())
    if len(uniq) < 2:
        return None
    diffs = np.diff(uniq).astype("timedelta64[s]").astype("float64")
    diffs = diffs[diffs > 0]
    return float(diffs.min()) if len(diffs) else None


def _buckets(
    metrics: pd.DataFrame | None, namespace: str, metric: str, stat: str, period_s: int
) -> tuple[pd.DataFrame, int]:
    """Datapoints of one metric, per resource and rule period: ``resource, bucket, value``.

    Also returns the bucket length in seconds (the rule's period, or the data's own when
    coarser; then Sum values are scaled to an average per rule period).
    """
    cols = ["resource", "bucket", "value"]
    if _empty(metrics):
        return pd.DataFrame(columns=cols), period_s
    sel = metrics[
        (metrics["namespace"] == namespace) & (metrics["metric"] == metric) & (metrics["stat"] == stat)
    ].dropna(subset=["value", "timestamp", "resource"])
    if sel.empty:
        return pd.DataFrame(columns=cols), period_s
    native = _native_period_s(sel["timestamp"]) or 0
    bucket_s = max(int(period_s), int(native))
    agg = {"Sum": "sum", "Average": "mean", "Maximum": "max", "Minimum": "min"}.get(stat, "mean")
    # floor from the epoch: hour buckets start on the hour
    bucket = sel["timestamp"].dt.floor(f"{bucket_s}s")
    out = sel.assign(bucket=bucket).groupby(["resource", "bucket"], observed=True)["value"].agg(agg)
    out = out.reset_index()
    if stat == "Sum" and bucket_s > period_s:
        out["value"] = out["value"] * (period_s / bucket_s)
    out["resource"] = out["resource"].astype(str)
    return out[cols], bucket_s


def _worst(buckets: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    """Per resource, the bucket with the highest ``column`` (earliest on a tie)."""
    if buckets.empty:
        return buckets
    ordered = buckets.sort_values([column, "bucket"], ascending=[False, True], kind="stable")
    return ordered.drop_duplicates("resource").sort_values("resource").reset_index(drop=True)


def _tier(value: float, tiers: Sequence[tuple[str, float, bool]]) -> tuple[str, float] | None:
    """The first ``(severity, threshold, inclusive)`` that ``value`` reaches (most severe first)."""
    for severity, threshold, inclusive in tiers:
        if threshold is None:
            continue
        if value > threshold or (inclusive and value >= threshold):
            return severity, float(threshold)
    return None


def _period_rule(rule: Mapping[str, Any]) -> int:
    return int(rule.get("period_s", 3600))


# -- health checks -----------------------------------------------------------------------


def _url_key(url: Any) -> str:
    text = "" if url is None or (not isinstance(url, str) and pd.isna(url)) else str(url)
    text = text.strip().rstrip("/")
    if text.endswith("/health"):
        text = text[: -len("/health")].rstrip("/")
    return text.lower()


def check_api_health(probes: pd.DataFrame | None, estate: Any, *, at: Any = None) -> pd.DataFrame:
    """``api_health`` (P0): a ``/health`` probe that did not answer 2xx, or did not answer.

    Parameters
    ----------
    probes
        From :func:`evilent_nb.probes.probe` (``url, status_code, ok, latency_ms, error``).
    estate
        Maps a probed URL to its service through ``Service.health_url``; the finding's
        resource is the service's first REST API name (the URL when it has none).
    at
        When the probes ran (default: no time).

    Returns
    -------
    pandas.DataFrame
        Findings, one per failed probe, playbook ``api-down``.

    Examples
    --------
    >>> check_api_health(probes_frame, estate)  # doctest: +SKIP
    """
    if _empty(probes):
        return findings_frame([])
    by_url = {}
    for svc in getattr(estate, "services", []) or []:
        if svc.health_url:
            by_url[_url_key(svc.health_url)] = svc
    when = pd.Timestamp(parse_time(at)) if at is not None else pd.NaT
    rows = []
    for probe in probes.itertuples(index=False):
        code = probe.status_code
        has_code = code is not None and not pd.isna(code)
        if has_code and 200 <= int(code) < 300:
            continue
        svc = by_url.get(_url_key(probe.url))
        resource = (svc.apis[0] if svc is not None and svc.apis else None) or str(probe.url)
        if has_code:
            what = f"answered HTTP {int(code)}"
        else:
            err = probe.error if isinstance(probe.error, str) and probe.error else "no answer"
            what = f"did not answer ({err})"
        rows.append({
            "severity": "P0",
            "check": "api_health",
            "service": svc.name if svc is not None else _service(estate, resource),
            "resource": resource,
            "value": float(code) if has_code else np.nan,
            "at": when,
            "message": f"GET {probe.url} {what}; a healthy service answers 2xx",
            "playbook": "api-down",
        })
    return findings_frame(rows)


def check_stack_status(
    stacks: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``stack_status``: ``*_FAILED`` -> P1, ``*ROLLBACK*`` (not failed) -> P2, ``*_IN_PROGRESS`` -> P3.

    The patterns come from the rulebook's ``stack_status`` (first matching level wins).

    Parameters
    ----------
    stacks
        From :func:`evilent_nb.inventory.stacks`.
    estate
        For the owning service's short name.
    rulebook
        ``Config.rulebook`` (default: the shipped one).

    Returns
    -------
    pandas.DataFrame
        Findings, one per stack whose status matches; ``at`` is the last update (or creation).

    Examples
    --------
    >>> check_stack_status(stacks_frame, estate).severity.tolist()  # doctest: +SKIP
    ['P1']
    """
    if _empty(stacks):
        return findings_frame([])
    patterns = _rule(rulebook, "stack_status")
    meaning = {"P1": "a deployment failed", "P2": "a deployment was rolled back",
               "P3": "a deployment is in progress"}
    rows = []
    for st in stacks.itertuples(index=False):
        status = str(st.status)
        level = next(
            (sev for sev in SEVERITIES for pat in patterns.get(sev, []) or [] if fnmatch.fnmatchcase(status, pat)),
            None,
        )
        if level is None:
            continue
        when = st.last_updated if not pd.isna(st.last_updated) else st.created
        reason = f": {st.status_reason}" if isinstance(st.status_reason, str) and st.status_reason else ""
        rows.append({
            "severity": level,
            "check": "stack_status",
            "service": _service(estate, st.name),
            "resource": st.name,
            "at": when,
            "message": f"stack {st.name} is {status} since {_when(when)} ({meaning.get(level, 'needs a look')}){reason}",
            "playbook": "",
        })
    return findings_frame(rows)


def _hourly_check(
    metrics: pd.DataFrame | None,
    estate: Any,
    *,
    check: str,
    namespace: str,
    metric: str,
    stat: str,
    period_s: int,
    tiers: Sequence[tuple[str, float, bool]],
    describe: Any,
    playbook: Any,
) -> pd.DataFrame:
    buckets, bucket_s = _buckets(metrics, namespace, metric, stat, period_s)
    rows = []
    for w in _worst(buckets).itertuples(index=False):
        hit = _tier(float(w.value), tiers)
        if hit is None:
            continue
        severity, threshold = hit
        rows.append({
            "severity": severity,
            "check": check,
            "service": _service(estate, w.resource),
            "resource": w.resource,
            "value": float(w.value),
            "threshold": threshold,
            "at": w.bucket,
            "message": describe(float(w.value), severity, threshold, w.bucket, bucket_s),
            "playbook": playbook(severity) if callable(playbook) else playbook,
        })
    return findings_frame(rows)


def _span(bucket: Any, bucket_s: int, period_s: int) -> str:
    if bucket_s == period_s:
        return f"in the {_hours(period_s)} from {_when(bucket)}"
    return f"per {_hours(period_s)} on average over the {_hours(bucket_s)} from {_when(bucket)}"


def check_lambda_errors(
    metrics: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``lambda_errors``: Errors Sum in any hour > 100 (P1, critical) or > 10 (P2, alert).

    Parameters
    ----------
    metrics
        A :func:`evilent_nb.metrics.metric_data` frame (``AWS/Lambda`` ``Errors`` ``Sum``).
    estate
        For the owning service.
    rulebook
        ``lambda_errors: {period_s, p1_above, p2_above}``.

    Returns
    -------
    pandas.DataFrame
        Findings, one per function (its worst hour), playbook ``high-error-rate``.

    Examples
    --------
    >>> check_lambda_errors(m, estate).message[0]  # doctest: +SKIP
    '150 errors in the hour from 2026-11-28 03:00 UTC (critical above 100/h)'
    """
    rule = _rule(rulebook, "lambda_errors")
    period_s = _period_rule(rule)

    def describe(value: float, severity: str, threshold: float, bucket: Any, bucket_s: int) -> str:
        word = "critical" if severity == "P1" else "alert"
        return f"{_num(value)} errors {_span(bucket, bucket_s, period_s)} ({word} above {_num(threshold)}/h)"

    return _hourly_check(
        metrics, estate, check="lambda_errors", namespace="AWS/Lambda", metric="Errors", stat="Sum",
        period_s=period_s, tiers=[("P1", rule.get("p1_above"), False), ("P2", rule.get("p2_above"), False)],
        describe=describe, playbook="high-error-rate",
    )


def check_lambda_duration(
    metrics: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``lambda_duration`` (P2): Duration Average in any hour > 5000 ms.

    Returns
    -------
    pandas.DataFrame
        Findings, one per function (its slowest hour), playbook ``high-latency``.

    Examples
    --------
    >>> check_lambda_duration(m, estate)  # doctest: +SKIP
    """
    rule = _rule(rulebook, "lambda_duration")
    period_s = _period_rule(rule)

    def describe(value: float, severity: str, threshold: float, bucket: Any, bucket_s: int) -> str:
        return (f"average duration {_num(round(value, 1))} ms in the {_hours(bucket_s)} from {_when(bucket)} "
                f"(investigate above {_num(threshold)} ms)")

    return _hourly_check(
        metrics, estate, check="lambda_duration", namespace="AWS/Lambda", metric="Duration", stat="Average",
        period_s=period_s, tiers=[("P2", rule.get("p2_above_ms"), False)],
        describe=describe, playbook="high-latency",
    )


def check_lambda_invocations(
    metrics: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``lambda_invocations`` (P3): Invocations Sum in any hour > 10,000.

    Returns
    -------
    pandas.DataFrame
        Findings, one per function (its busiest hour), no playbook.

    Examples
    --------
    >>> check_lambda_invocations(m, estate)  # doctest: +SKIP
    """
    rule = _rule(rulebook, "lambda_invocations")
    period_s = _period_rule(rule)

    def describe(value: float, severity: str, threshold: float, bucket: Any, bucket_s: int) -> str:
        return f"{_num(value)} invocations {_span(bucket, bucket_s, period_s)} (investigate above {_num(threshold)}/h)"

    return _hourly_check(
        metrics, estate, check="lambda_invocations", namespace="AWS/Lambda", metric="Invocations", stat="Sum",
        period_s=period_s, tiers=[("P3", rule.get("p3_above"), False)], describe=describe, playbook="",
    )


def check_lambda_throttles(
    metrics: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``lambda_throttles`` (P3): Throttles Sum over the window > 0.

    ``value`` is the window's total; ``at`` is the hour with the most throttles.

    Returns
    -------
    pandas.DataFrame
        Findings, one per throttled function, no playbook.

    Examples
    --------
    >>> check_lambda_throttles(m, estate)  # doctest: +SKIP
    """
    rule = _rule(rulebook, "lambda_throttles")
    limit = float(rule.get("p3_above", 0))
    buckets, _ = _buckets(metrics, "AWS/Lambda", "Throttles", "Sum", 3600)
    if buckets.empty:
        return findings_frame([])
    totals = buckets.groupby("resource")["value"].sum()
    rows = []
    for w in _worst(buckets).itertuples(index=False):
        total = float(totals[w.resource])
        if not total > limit:
            continue
        rows.append({
            "severity": "P3",
            "check": "lambda_throttles",
            "service": _service(estate, w.resource),
            "resource": w.resource,
            "value": total,
            "threshold": limit,
            "at": w.bucket,
            "message": (f"{_num(total)} throttled invocations in the window "
                        f"(most, {_num(float(w.value))}, in the hour from {_when(w.bucket)}); "
                        f"expected {_num(limit)}"),
            "playbook": "",
        })
    return findings_frame(rows)


def check_apigw_5xx_rate(
    metrics: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``apigw_5xx_rate``: 5XXError / Count in any hour = 100 % (P0), > 10 % (P1), > 5 % (P2).

    Hours with fewer than ``min_requests`` requests are not judged.

    Parameters
    ----------
    metrics
        A metric_data frame with ``AWS/ApiGateway`` ``5XXError`` and ``Count`` (``Sum``).
    estate
        For the owning service.
    rulebook
        ``apigw_5xx_rate: {period_s, p0_at_or_above, p1_above, p2_above, min_requests}``.

    Returns
    -------
    pandas.DataFrame
        Findings, one per API (its worst hour); ``value`` is the rate (1.0 = 100 %);
        playbook ``api-down`` for P0, else ``high-error-rate``.

    Examples
    --------
    >>> check_apigw_5xx_rate(m, estate)  # doctest: +SKIP
    """
    rule = _rule(rulebook, "apigw_5xx_rate")
    period_s = _period_rule(rule)
    errors, bucket_s = _buckets(metrics, "AWS/ApiGateway", "5XXError", "Sum", period_s)
    counts, count_bucket_s = _buckets(metrics, "AWS/ApiGateway", "Count", "Sum", period_s)
    if errors.empty or counts.empty:
        return findings_frame([])
    if count_bucket_s != bucket_s:  # different native periods: judge both at the coarser one
        bucket_s = max(bucket_s, count_bucket_s)
        errors, _ = _buckets(metrics, "AWS/ApiGateway", "5XXError", "Sum", bucket_s)
        counts, _ = _buckets(metrics, "AWS/ApiGateway", "Count", "Sum", bucket_s)
    joined = counts.rename(columns={"value": "requests"}).merge(
        errors.rename(columns={"value": "errors"}), on=["resource", "bucket"], how="left"
    )
    joined["errors"] = joined["errors"].fillna(0.0)
    joined = joined[joined["requests"] >= float(rule.get("min_requests", 1))]
    joined = joined[joined["requests"] > 0]
    if joined.empty:
        return findings_frame([])
    joined = joined.assign(rate=joined["errors"] / joined["requests"])
    tiers = [("P0", rule.get("p0_at_or_above"), True), ("P1", rule.get("p1_above"), False),
             ("P2", rule.get("p2_above"), False)]
    words = {"P0": "down at", "P1": "incident above", "P2": "incident above"}
    rows = []
    for w in _worst(joined, "rate").itertuples(index=False):
        hit = _tier(float(w.rate), tiers)
        if hit is None:
            continue
        severity, threshold = hit
        rows.append({
            "severity": severity,
            "check": "apigw_5xx_rate",
            "service": _service(estate, w.resource),
            "resource": w.resource,
            "value": float(w.rate),
            "threshold": threshold,
            "at": w.bucket,
            "message": (f"{_pct(float(w.rate))} of {_num(float(w.requests))} requests failed with 5xx "
                        f"in the {_hours(bucket_s)} from {_when(w.bucket)} ({words[severity]} {_pct(threshold)})"),
            "playbook": "api-down" if severity == "P0" else "high-error-rate",
        })
    return findings_frame(rows)


def check_log_errors(
    error_counts: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``log_errors`` (P3): ERROR lines in the window > 0, per log group.

    Parameters
    ----------
    error_counts
        From :func:`evilent_nb.logs.error_counts` (``log_group, count, first_seen, last_seen``).

    Returns
    -------
    pandas.DataFrame
        Findings, one per log group with errors; ``at`` is the first one; playbook
        ``high-error-rate`` (its first step is the top-errors query).

    Examples
    --------
    >>> check_log_errors(counts, estate)  # doctest: +SKIP
    """
    if _empty(error_counts):
        return findings_frame([])
    rule = _rule(rulebook, "log_errors")
    limit = float(rule.get("p3_above", 0))
    pattern = rule.get("pattern", "ERROR")
    capped = set(error_counts.attrs.get("capped") or ())  # counting stopped: a lower bound
    rows = []
    for g in error_counts.itertuples(index=False):
        count = float(g.count) if not pd.isna(g.count) else 0.0
        if not count > limit:
            continue
        if g.log_group in capped:
            message = (f"at least {_num(count)} {pattern} lines in the window (counting stopped there; "
                       f"first {_when(g.first_seen)})")
        else:
            message = (f"{_num(count)} {pattern} lines in the window "
                       f"(first {_when(g.first_seen)}, last {_when(g.last_seen)})")
        rows.append({
            "severity": "P3",
            "check": "log_errors",
            "service": _service(estate, g.log_group),
            "resource": g.log_group,
            "value": count,
            "threshold": limit,
            "at": g.first_seen,
            "message": message,
            "playbook": "high-error-rate",
        })
    return findings_frame(rows)


def check_db_status(
    db_instances: pd.DataFrame | None,
    expected_ids: Iterable[str] | None = None,
    *,
    rulebook: Mapping[str, Any] | None = None,
    at: Any = None,
) -> pd.DataFrame:
    """``db_status`` (P1): a DB instance whose status is not ``available``, or that is missing.

    Parameters
    ----------
    db_instances
        From :func:`evilent_nb.inventory.db_instances`.
    expected_ids
        The instances to watch (``Estate.db_instances``); one that is not in the frame is
        reported as not found. ``None`` judges every row.
    rulebook
        ``db_status: {ok: [available]}``.
    at
        When the status was read (default: no time).

    Returns
    -------
    pandas.DataFrame
        Findings, playbook ``db-connection``.

    Examples
    --------
    >>> check_db_status(dbs, ["evilent-user-service-db"])  # doctest: +SKIP
    """
    ok = set(_rule(rulebook, "db_status").get("ok", ["available"]))
    frame = db_instances if db_instances is not None else typed_frame([], "db_instances")
    when = pd.Timestamp(parse_time(at)) if at is not None else pd.NaT
    expected = list(expected_ids) if expected_ids is not None else None
    rows = []
    seen = set(frame["id"].dropna().astype(str))
    for db in frame.itertuples(index=False):
        if expected is not None and db.id not in expected:
            continue
        if str(db.status) in ok:
            continue
        rows.append({
            "severity": "P1", "check": "db_status", "resource": db.id, "at": when,
            "message": f"DB instance {db.id} is {db.status}, not {' or '.join(sorted(ok))}",
            "playbook": "db-connection",
        })
    for db_id in expected or []:
        if db_id not in seen:
            rows.append({
                "severity": "P1", "check": "db_status", "resource": db_id, "at": when,
                "message": f"DB instance {db_id} was not found",
                "playbook": "db-connection",
            })
    return findings_frame(rows)


def check_alarm_state(
    alarms: pd.DataFrame | None, estate: Any = None, rulebook: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``alarm_state`` (P2): a CloudWatch alarm in ALARM.

    Parameters
    ----------
    alarms
        From :func:`evilent_nb.inventory.alarms`.

    Returns
    -------
    pandas.DataFrame
        Findings; ``threshold`` is the alarm's, ``at`` when it entered ALARM; playbook by the
        alarm's metric (Errors -> ``high-error-rate``, Duration -> ``high-latency``, ...).

    Examples
    --------
    >>> check_alarm_state(alarms_frame, estate)  # doctest: +SKIP
    """
    if _empty(alarms):
        return findings_frame([])
    states = set(_rule(rulebook, "alarm_state").get("fires_in", ["ALARM"]))
    rows = []
    for a in alarms.itertuples(index=False):
        if str(a.state) not in states:
            continue
        dims = a.dimensions if isinstance(a.dimensions, Mapping) else {}
        service = next((s for s in (_service(estate, v) for v in dims.values()) if s), "")
        reason = f": {a.state_reason}" if isinstance(a.state_reason, str) and a.state_reason else ""
        rows.append({
            "severity": "P2",
            "check": "alarm_state",
            "service": service,
            "resource": a.name,
            "threshold": a.threshold,
            "at": a.state_updated,
            "message": f"alarm {a.name} is in {a.state} since {_when(a.state_updated)}{reason}",
            "playbook": _ALARM_PLAYBOOKS.get(str(a.metric), ""),
        })
    return findings_frame(rows)


# -- cost checks -------------------------------------------------------------------------


def check_monthly_cost(
    cost: pd.DataFrame | None,
    *,
    now: Any,
    rulebook: Mapping[str, Any] | None = None,
    monthly_budget_usd: float | None = None,
) -> pd.DataFrame:
    """``monthly_cost`` (P3): month-to-date or the run-rate forecast > the monthly budget.

    Parameters
    ----------
    cost
        A daily :func:`evilent_nb.cost.cost_and_usage` frame covering this month.
    now
        The report's "now" (tz-aware).
    rulebook
        ``budget: {monthly_usd}``.
    monthly_budget_usd
        Overrides the rulebook (the cost report's parameter).

    Returns
    -------
    pandas.DataFrame
        At most one finding, resource ``total``: ``value`` is the month-to-date when that
        is over budget, else the forecast; ``threshold`` the budget.

    Examples
    --------
    >>> check_monthly_cost(cost, now="2026-11-28T09:00:00Z")  # doctest: +SKIP
    """
    from .cost import run_rate_forecast

    budget = float(monthly_budget_usd if monthly_budget_usd is not None
                   else _rule(rulebook, "budget").get("monthly_usd", 100))
    if _empty(cost):
        return findings_frame([])
    when = pd.Timestamp(parse_time(now))
    fc = run_rate_forecast(cost, now=when)
    mtd = float(fc["month_to_date"])
    forecast = float(fc["forecast"])
    month = pd.Timestamp(fc["month_start"]).strftime("%B %Y")
    if mtd > budget:
        value, msg = mtd, (f"month-to-date cost {_num(round(mtd, 2))} USD for {month} is over the "
                           f"{_num(budget)} USD monthly budget: review optimisations")
    elif forecast > budget:
        value, msg = forecast, (
            f"the run-rate forecast for {month} is {_num(round(forecast, 2))} USD "
            f"({_num(round(mtd, 2))} USD after {_num(float(fc['days_elapsed']))} days), over the "
            f"{_num(budget)} USD monthly budget: review optimisations")
    else:
        return findings_frame([])
    return findings_frame([{
        "severity": "P3", "check": "monthly_cost", "resource": "total",
        "value": value, "threshold": budget, "at": when, "message": msg, "playbook": "",
    }])


def check_cost_anomaly(
    cost: pd.DataFrame | None, rulebook: Mapping[str, Any] | None = None, *, now: Any = None
) -> pd.DataFrame:
    """``cost_anomaly`` (P3): a complete day's cost far above its trailing baseline.

    "Far above" is :func:`evilent_nb.cost.anomalies` with the rulebook's ``cost_anomaly``
    settings (mean + 3 sigma of the previous 14 days, and more than 1 USD); days not yet
    complete at ``now`` (and estimated days) are not judged.

    Returns
    -------
    pandas.DataFrame
        Findings, one per AWS service (its most expensive anomalous day); ``value`` that
        day's cost, ``threshold`` the baseline limit, ``at`` the day.

    Examples
    --------
    >>> check_cost_anomaly(cost)  # doctest: +SKIP
    """
    from .cost import anomalies

    if _empty(cost):
        return findings_frame([])
    rule = _rule(rulebook, "cost_anomaly")
    found = anomalies(
        cost,
        baseline_days=int(rule.get("baseline_days", 14)),
        sigmas=float(rule.get("sigmas", 3.0)),
        min_usd=float(rule.get("min_usd", 1.0)),
        now=now,
    )
    if found.empty:
        return findings_frame([])
    days = found.groupby("service")["date"].count()
    worst = found.sort_values(["amount", "date"], ascending=[False, True], kind="stable").drop_duplicates("service")
    rows = []
    for a in worst.itertuples(index=False):
        more = int(days[a.service]) - 1
        extra = f"; {more} more anomalous day{'s' if more > 1 else ''}" if more else ""
        rows.append({
            "severity": "P3", "check": "cost_anomaly", "resource": a.service,
            "value": float(a.amount), "threshold": float(a.threshold), "at": a.date,
            "message": (f"{a.service} cost {_num(round(float(a.amount), 2))} USD on "
                        f"{pd.Timestamp(a.date).strftime('%Y-%m-%d')}, {_times(a.amount, a.baseline_mean)}its usual "
                        f"{_num(round(float(a.baseline_mean), 2))} USD/day over the previous "
                        f"{int(rule.get('baseline_days', 14))} days (anomaly threshold "
                        f"{_num(round(float(a.threshold), 2))} USD){extra}"),
            "playbook": "",
        })
    return findings_frame(rows)


# -- maintenance checks ------------------------------------------------------------------


def check_log_retention(
    log_groups: pd.DataFrame | None,
    rulebook: Mapping[str, Any] | None = None,
    retention_days: int | None = None,
    *,
    estate: Any = None,
) -> pd.DataFrame:
    """``log_retention`` (P3): a log group whose retention is not ``retention_days``.

    Never-expire (``retention_days`` null) fires too.

    Returns
    -------
    pandas.DataFrame
        Findings, one per log group; ``value`` the group's retention (NaN = never expire).

    Examples
    --------
    >>> check_log_retention(groups, retention_days=30)  # doctest: +SKIP
    """
    if _empty(log_groups):
        return findings_frame([])
    want = int(retention_days if retention_days is not None else _rule(rulebook, "log_retention").get("days", 30))
    rows = []
    for g in log_groups.itertuples(index=False):
        have = g.retention_days
        if not pd.isna(have) and int(have) == want:
            continue
        now_is = "forever (never expire)" if pd.isna(have) else f"for {int(have)} days"
        rows.append({
            "severity": "P3", "check": "log_retention", "service": _service(estate, g.name),
            "resource": g.name, "value": np.nan if pd.isna(have) else float(have),
            "threshold": float(want),
            "message": f"log group {g.name} keeps its logs {now_is}; the runbook wants {want} days",
            "playbook": "",
        })
    return findings_frame(rows)


def check_stale_log_streams(
    stale_streams: pd.DataFrame | None,
    rulebook: Mapping[str, Any] | None = None,
    stale_days: int | None = None,
    *,
    now: Any = None,
    estate: Any = None,
) -> pd.DataFrame:
    """``stale_log_streams`` (P3): a log group holding streams with no event for ``stale_days``.

    Parameters
    ----------
    stale_streams
        Streams already judged stale (:func:`evilent_nb.maintenance.stale_streams` or
        ``inventory.log_streams(..., older_than=...)``). With ``now``, streams whose last
        event (or creation, when they have none) is not older than ``stale_days`` are dropped.

    Returns
    -------
    pandas.DataFrame
        Findings, one per log group; ``value`` the number of stale streams, ``threshold``
        ``stale_days``, ``at`` the oldest stream's last event.

    Examples
    --------
    >>> check_stale_log_streams(stale, stale_days=30)  # doctest: +SKIP
    """
    if _empty(stale_streams):
        return findings_frame([])
    days = int(stale_days if stale_days is not None else _rule(rulebook, "stale_log_streams").get("days", 30))
    frame = stale_streams.copy()
    seen = frame["last_event"].where(frame["last_event"].notna(), frame.get("created"))
    frame = frame.assign(_seen=seen)
    if now is not None:
        cutoff = pd.Timestamp(parse_time(now)) - pd.Timedelta(days=days)
        frame = frame[frame["_seen"].isna() | (frame["_seen"] < cutoff)]
    rows = []
    for group, part in frame.groupby("log_group", sort=True):
        oldest = part["_seen"].min()
        n = len(part)
        rows.append({
            "severity": "P3", "check": "stale_log_streams", "service": _service(estate, group),
            "resource": group, "value": float(n), "threshold": float(days), "at": oldest,
            "message": (f"{n} log stream{'s' if n != 1 else ''} in {group} with no event for more than "
                        f"{days} days (oldest {_when(oldest)}); delete them"),
            "playbook": "",
        })
    return findings_frame(rows)


def check_unused_policy(policies: pd.DataFrame | None) -> pd.DataFrame:
    """``unused_policy`` (P3): a customer-managed policy with AttachmentCount 0.

    Returns
    -------
    pandas.DataFrame
        Findings, one per unattached policy; ``at`` its last update.

    Examples
    --------
    >>> check_unused_policy(policies_frame)  # doctest: +SKIP
    """
    if _empty(policies):
        return findings_frame([])
    rows = []
    for p in policies.itertuples(index=False):
        if pd.isna(p.attachment_count) or int(p.attachment_count) != 0:
            continue
        rows.append({
            "severity": "P3", "check": "unused_policy", "resource": p.name, "value": 0.0,
            "threshold": 0.0, "at": p.updated,
            "message": f"customer-managed policy {p.name} is attached to nothing; delete it only with care",
            "playbook": "",
        })
    return findings_frame(rows)


def _age_days(now: pd.Timestamp, then: Any) -> float:
    return round((now - pd.Timestamp(then)) / pd.Timedelta(days=1), 2)


def check_db_backup_age(
    snapshots: pd.DataFrame | None,
    db_ids: Iterable[str],
    now: Any,
    rulebook: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """``db_backup_age`` (P2): a DB instance whose newest available snapshot is older than 31 days, or has none.

    Parameters
    ----------
    snapshots
        From :func:`evilent_nb.inventory.db_snapshots`; only ``available`` snapshots count.
    db_ids
        The instances to judge (``Estate.db_instances``).
    now
        Reference time (tz-aware).

    Returns
    -------
    pandas.DataFrame
        Findings; ``value`` the newest snapshot's age in days (NaN when none),
        ``threshold`` ``max_days``, ``at`` that snapshot's creation.

    Examples
    --------
    >>> check_db_backup_age(snaps, ["evilent-user-service-db"], now="2026-11-28T00:00:00Z")  # doctest: +SKIP
    """
    limit = float(_rule(rulebook, "db_backup_age").get("max_days", 31))
    when = pd.Timestamp(parse_time(now))
    frame = snapshots if snapshots is not None else typed_frame([], "db_snapshots")
    ok = frame[(frame["status"].fillna("available") == "available") & frame["created"].notna()]
    rows = []
    for db_id in db_ids:
        mine = ok[ok["db"] == db_id]
        if mine.empty:
            rows.append({
                "severity": "P2", "check": "db_backup_age", "resource": db_id, "threshold": limit,
                "message": f"DB instance {db_id} has no available snapshot",
            })
            continue
        newest = mine["created"].max()
        age = _age_days(when, newest)
        if not age > limit:
            continue
        rows.append({
            "severity": "P2", "check": "db_backup_age", "resource": db_id, "value": age,
            "threshold": limit, "at": newest,
            "message": (f"the newest snapshot of {db_id} is {_num(age)} days old "
                        f"(from {_when(newest)}; at most {_num(limit)} days)"),
        })
    return findings_frame(rows)


def check_backup_objects_age(
    backup_objects: pd.DataFrame | None,
    *,
    bucket: str | None,
    prefixes: Iterable[str],
    now: Any,
    rulebook: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """``db_backup_age`` (P2) for the runbook's dumps in S3: a prefix whose newest object is
    older than 31 days, or that holds none.

    Returns
    -------
    pandas.DataFrame
        Findings with resource ``s3://<bucket>/<prefix>``.

    Examples
    --------
    >>> check_backup_objects_age(objs, bucket="evilent-backups", prefixes=["user-service/"], now=now)  # doctest: +SKIP
    """
    if not bucket:
        return findings_frame([])
    limit = float(_rule(rulebook, "db_backup_age").get("max_days", 31))
    when = pd.Timestamp(parse_time(now))
    frame = backup_objects if backup_objects is not None else typed_frame([], "backup_objects")
    frame = frame[(frame["bucket"] == bucket) & frame["last_modified"].notna()]
    rows = []
    for prefix in prefixes:
        where = f"s3://{bucket}/{prefix}"
        mine = frame[frame["key"].astype(str).str.startswith(prefix)]
        mine = mine[~mine["key"].astype(str).str.endswith("/")]  # folder markers are not dumps
        if mine.empty:
            rows.append({"severity": "P2", "check": "db_backup_age", "resource": where, "threshold": limit,
                         "message": f"no backup found under {where}"})
            continue
        newest = mine["last_modified"].max()
        age = _age_days(when, newest)
        if age > limit:
            rows.append({
                "severity": "P2", "check": "db_backup_age", "resource": where, "value": age,
                "threshold": limit, "at": newest,
                "message": f"the newest backup under {where} is {_num(age)} days old (at most {_num(limit)} days)",
            })
    return findings_frame(rows)


def check_deprecated_runtime(
    functions: pd.DataFrame | None, rulebook: Mapping[str, Any] | None = None, *, estate: Any = None
) -> pd.DataFrame:
    """``deprecated_runtime`` (P3): a Lambda function on a runtime past its deprecation.

    The list is the rulebook's ``deprecated_runtimes``; container images (no runtime) pass.

    Returns
    -------
    pandas.DataFrame
        Findings, one per function; ``at`` its last modification.

    Examples
    --------
    >>> check_deprecated_runtime(fns)  # doctest: +SKIP
    """
    if _empty(functions):
        return findings_frame([])
    deprecated = set(_rule(rulebook, "deprecated_runtimes") or [])
    rows = []
    for f in functions.itertuples(index=False):
        if pd.isna(f.runtime) or str(f.runtime) not in deprecated:
            continue
        rows.append({
            "severity": "P3", "check": "deprecated_runtime", "service": _service(estate, f.name),
            "resource": f.name, "at": f.last_modified,
            "message": f"function {f.name} runs on {f.runtime}, a deprecated Lambda runtime; upgrade it",
            "playbook": "",
        })
    return findings_frame(rows)


# -- per report --------------------------------------------------------------------------


def health_findings(
    *,
    estate: Any,
    stacks: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
    probes: pd.DataFrame | None = None,
    error_counts: pd.DataFrame | None = None,
    db_instances: pd.DataFrame | None = None,
    alarms: pd.DataFrame | None = None,
    rulebook: Mapping[str, Any] | None = None,
    now: Any = None,
) -> pd.DataFrame:
    """Every health-report check over what was gathered (``None`` = that source is missing).

    Parameters
    ----------
    estate
        The discovered estate (services, ``db_instances``).
    stacks, metrics, probes, error_counts, db_instances, alarms
        The health report's frames; one that is ``None`` is skipped (the report adds
        :func:`data_unavailable` for it).
    rulebook
        ``Config.rulebook``.
    now
        When the probes and DB status were read (their findings' ``at``).

    Returns
    -------
    pandas.DataFrame
        All findings, sorted.

    Examples
    --------
    >>> health_findings(estate=estate, metrics=m, rulebook=config.rulebook)  # doctest: +SKIP
    """
    parts = [
        check_api_health(probes, estate, at=now) if probes is not None else None,
        check_stack_status(stacks, estate, rulebook) if stacks is not None else None,
    ]
    if metrics is not None:
        parts += [check(metrics, estate, rulebook) for check in (
            check_lambda_errors, check_lambda_duration, check_lambda_invocations,
            check_lambda_throttles, check_apigw_5xx_rate)]
    if error_counts is not None:
        parts.append(check_log_errors(error_counts, estate, rulebook))
    if db_instances is not None:
        parts.append(check_db_status(db_instances, getattr(estate, "db_instances", None),
                                     rulebook=rulebook, at=now))
    if alarms is not None:
        parts.append(check_alarm_state(alarms, estate, rulebook))
    return _concat(parts)


def cost_findings(
    cost: pd.DataFrame | None,
    *,
    now: Any,
    rulebook: Mapping[str, Any] | None = None,
    monthly_budget_usd: float | None = None,
) -> pd.DataFrame:
    """The cost report's checks: ``monthly_cost`` and ``cost_anomaly``.

    Examples
    --------
    >>> cost_findings(cost, now=now, rulebook=config.rulebook)  # doctest: +SKIP
    """
    if cost is None:
        return findings_frame([])
    return _concat([
        check_monthly_cost(cost, now=now, rulebook=rulebook, monthly_budget_usd=monthly_budget_usd),
        check_cost_anomaly(cost, rulebook, now=now),
    ])


def maintenance_findings(
    *,
    log_groups: pd.DataFrame | None = None,
    stale_streams: pd.DataFrame | None = None,
    policies: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
    backup_objects: pd.DataFrame | None = None,
    functions: pd.DataFrame | None = None,
    alarm_plan: pd.DataFrame | None = None,
    estate: Any = None,
    rulebook: Mapping[str, Any] | None = None,
    now: Any,
    retention_days: int | None = None,
    stale_days: int | None = None,
) -> pd.DataFrame:
    """The maintenance report's checks.

    Parameters
    ----------
    log_groups, stale_streams, policies, snapshots, backup_objects, functions
        The report's frames; ``None`` = missing source, skipped.
    alarm_plan
        The ``missing_alarm`` findings (``alarms.check_missing_alarm(plan)``), or the plan
        itself (then that function is called here).
    estate
        For services, ``db_instances``, ``backup_bucket`` and ``backup_prefixes``.
    now
        Reference time for ages.
    retention_days, stale_days
        The report's parameters (default: the rulebook's).

    Returns
    -------
    pandas.DataFrame
        All findings, sorted.

    Examples
    --------
    >>> maintenance_findings(log_groups=groups, estate=estate, now=now)  # doctest: +SKIP
    """
    parts: list[pd.DataFrame | None] = []
    if log_groups is not None:
        parts.append(check_log_retention(log_groups, rulebook, retention_days, estate=estate))
    if stale_streams is not None:
        parts.append(check_stale_log_streams(stale_streams, rulebook, stale_days, now=now, estate=estate))
    if policies is not None:
        parts.append(check_unused_policy(policies))
    if snapshots is not None:
        parts.append(check_db_backup_age(snapshots, getattr(estate, "db_instances", None) or [], now, rulebook))
    if backup_objects is not None:
        parts.append(check_backup_objects_age(
            backup_objects, bucket=getattr(estate, "backup_bucket", None),
            prefixes=getattr(estate, "backup_prefixes", None) or [], now=now, rulebook=rulebook))
    if functions is not None:
        parts.append(check_deprecated_runtime(functions, rulebook, estate=estate))
    if alarm_plan is not None:
        if set(SCHEMAS["findings"]).issubset(alarm_plan.columns):
            parts.append(alarm_plan)
        else:
            from .alarms import check_missing_alarm

            parts.append(check_missing_alarm(alarm_plan))
    return _concat(parts)
