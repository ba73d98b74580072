"""What each report gathers and judges: one function per report, called by its notebook.

A report notebook stays thin: it opens a :class:`~evilent_nb.report.ReportContext`, calls
one function here, and shows the frames and figures of the result. The logic lives here,
where it is tested against the sandbox without a kernel.

Each function reads through ``ctx`` (so every AWS answer is counted and recorded as
evidence, and a failed source becomes a ``data_unavailable`` finding instead of a failed
report), adds its findings to ``ctx``, and returns a dataclass of frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import alarms as alarms_mod
from . import cost as cost_mod
from . import inventory, logs, maintenance, metrics, rules
from .frames import typed_frame
from .probes import probe
from .timeframe import Window

__all__ = [
    "CostData",
    "HealthData",
    "IncidentData",
    "MaintenanceData",
    "gather_cost",
    "gather_health",
    "gather_incident",
    "gather_maintenance",
    "plan_view",
]


def _ok(ctx: Any, source: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The frame if its source answered, ``None`` if it failed (rules then skip it)."""
    return frame if ctx.sources.get(source) == "ok" else None


@dataclass
class HealthData:
    """What the health report gathered.

    Attributes
    ----------
    window
        The report's window.
    services
        :meth:`Estate.to_frame` (service, stack, status, functions, apis, health_url, log_groups).
    stacks, functions, probes, error_counts, metrics, db_instances, alarms
        Frames as documented in :mod:`evilent_nb.frames` (``metrics`` is the long frame of
        the whole estate's hourly metrics, from ONE batched GetMetricData pull).
    rates_5xx
        :func:`evilent_nb.metrics.apigw_5xx_rate` of ``metrics``.
    alarms_firing
        The alarms in ALARM.
    findings
        This report's findings (also added to ``ctx``).
    """

    window: Window
    services: pd.DataFrame
    stacks: pd.DataFrame
    functions: pd.DataFrame
    probes: pd.DataFrame
    error_counts: pd.DataFrame
    metrics: pd.DataFrame
    rates_5xx: pd.DataFrame
    db_instances: pd.DataFrame
    alarms: pd.DataFrame
    alarms_firing: pd.DataFrame
    findings: pd.DataFrame = field(repr=False)


def gather_health(ctx: Any, *, window: str = "24h") -> HealthData:
    """The daily health check: stacks, functions, probes, errors, metrics, DB, alarms.

    Parameters
    ----------
    ctx
        The report's :class:`~evilent_nb.report.ReportContext`.
    window
        ``Nh``/``Nd``/``Nw`` or ``START/END``.

    Returns
    -------
    HealthData

    Examples
    --------
    >>> ctx = ReportContext.open("health")                    # doctest: +SKIP
    >>> data = gather_health(ctx, window="24h")             # doctest: +SKIP
    >>> ctx.status, len(data.metrics)                       # doctest: +SKIP
    ('P0', 312)
    """
    win = ctx.window(window)
    cfg = ctx.config
    estate = ctx.estate
    stacks = estate.stacks  # discovery's own DescribeStacks read: no second call
    functions = ctx.gather("lambda.ListFunctions", inventory.functions, name_contains=cfg.name_contains)
    # A service without an *ApiUrl output (a worker, a queue consumer) has nothing to probe:
    # probing None would report it down (P0).
    urls = {s.name: s.health_url for s in estate.services if s.health_url}
    probes = ctx.record_frame("probes", probe, urls)
    errors = ctx.gather("logs.FilterLogEvents", logs.error_counts, estate.log_groups,
                        window=win, pattern=cfg.rulebook["log_errors"]["pattern"])
    queries = (metrics.lambda_metrics(estate.functions) + metrics.apigw_metrics(estate.apis)
               + metrics.rds_metrics(estate.db_instances))
    period = int(cfg.rulebook["lambda_errors"]["period_s"])
    frame = ctx.gather("cloudwatch.GetMetricData", metrics.metric_data, queries, win, period=period, now=ctx.now)
    dbs = ctx.gather("rds.DescribeDBInstances", inventory.db_instances, ids=list(estate.db_instances))
    alarm_frame = ctx.gather("cloudwatch.DescribeAlarms", inventory.alarms)
    findings = ctx.add_findings(rules.health_findings(
        estate=estate,
        stacks=stacks if ctx.estate_error is None else None,
        metrics=_ok(ctx, "cloudwatch.GetMetricData", frame),
        probes=probes,
        error_counts=_ok(ctx, "logs.FilterLogEvents", errors),
        db_instances=_ok(ctx, "rds.DescribeDBInstances", dbs),
        alarms=_ok(ctx, "cloudwatch.DescribeAlarms", alarm_frame),
        rulebook=cfg.rulebook,
        now=ctx.now,
    ))
    firing = alarm_frame[alarm_frame["state"] == "ALARM"].reset_index(drop=True)
    return HealthData(
        window=win, services=estate.to_frame(), stacks=stacks, functions=functions, probes=probes,
        error_counts=errors, metrics=frame, rates_5xx=metrics.apigw_5xx_rate(frame),
        db_instances=dbs, alarms=alarm_frame, alarms_firing=firing, findings=findings,
    )


@dataclass
class CostData:
    """What the cost review gathered, all from ONE GetCostAndUsage pull.

    Attributes
    ----------
    window
        The report's window (whole days).
    cost
        Daily cost by service (start, end, service, amount, unit, estimated).
    month_to_date
        service, amount: this month so far, most expensive first.
    forecast
        :func:`evilent_nb.cost.run_rate_forecast`'s dict.
    week_over_week
        service, this_week, last_week, change_usd, change_pct.
    anomalies
        date, service, amount, baseline_mean, baseline_std, threshold.
    estimated_days
        The days whose cost is not final yet (start, amount).
    budget_usd
        The monthly budget judged against.
    findings
        This report's findings.
    """

    window: Window
    cost: pd.DataFrame
    month_to_date: pd.DataFrame
    forecast: dict[str, Any]
    week_over_week: pd.DataFrame
    anomalies: pd.DataFrame
    estimated_days: pd.DataFrame
    budget_usd: float
    findings: pd.DataFrame = field(repr=False)


def gather_cost(ctx: Any, *, window: str = "35d", monthly_budget_usd: float | None = None) -> CostData:
    """The weekly cost review: month to date, run-rate, trend, movers, anomalies.

    The pull covers the window and, when the window starts later, the month so far, so
    month-to-date and the run-rate are always complete: still one request (plus pages).

    Parameters
    ----------
    ctx
        The report's context.
    window
        Whole days (``35d``) or ``START/END``.
    monthly_budget_usd
        Default: the rulebook's ``budget.monthly_usd`` (100).

    Examples
    --------
    >>> data = gather_cost(ReportContext.open("cost"), window="35d")   # doctest: +SKIP
    >>> data.forecast["forecast"]                                      # doctest: +SKIP
    50.69
    """
    win = ctx.window(window)
    rulebook = ctx.config.rulebook
    budget = float(monthly_budget_usd) if monthly_budget_usd is not None else float(rulebook["budget"]["monthly_usd"])
    month_start = pd.Timestamp(ctx.now).tz_convert("UTC").normalize().replace(day=1)
    pull = Window(min(win.start, month_start.to_pydatetime()), win.end)
    # now= keeps the request's dates tied to the run's frozen now, so a replay asks the same
    cost = ctx.gather("ce.GetCostAndUsage", cost_mod.cost_and_usage, pull, now=ctx.now)
    ok = ctx.sources.get("ce.GetCostAndUsage") == "ok"
    findings = ctx.add_findings(
        rules.cost_findings(cost, now=ctx.now, rulebook=rulebook, monthly_budget_usd=budget) if ok else None
    )
    in_window = cost[cost["start"] >= pd.Timestamp(win.start).floor("D")]
    estimated = (cost[cost["estimated"]].groupby("start", as_index=False)["amount"].sum()
                 if not cost.empty else pd.DataFrame({"start": [], "amount": []}))
    return CostData(
        window=win,
        cost=in_window.reset_index(drop=True),
        month_to_date=cost_mod.month_to_date(cost, now=ctx.now),
        forecast=cost_mod.run_rate_forecast(cost, now=ctx.now),
        week_over_week=cost_mod.week_over_week(cost, now=ctx.now),
        anomalies=cost_mod.anomalies(
            cost, baseline_days=int(rulebook["cost_anomaly"]["baseline_days"]),
            sigmas=float(rulebook["cost_anomaly"]["sigmas"]),
            min_usd=float(rulebook["cost_anomaly"]["min_usd"]), now=ctx.now),
        estimated_days=estimated,
        budget_usd=budget,
        findings=findings,
    )


@dataclass
class MaintenanceData:
    """What the maintenance report found, and its plans.

    Attributes
    ----------
    log_groups
        Every log group (name, retention_days, stored_bytes, created).
    retention_plan, retention_result
        Groups whose retention is not ``retention_days``; what was done (or "planned").
    stale_streams
        log_group, name, last_event, age_days, created.
    stale_plan, stale_result
        The streams to delete; what was done.
    policies, unused_policies
        Customer-managed policies; those attached nowhere (listed only, never deleted).
    snapshots, backup_objects
        RDS snapshots of the estate's DB instances; the dumps in the backup bucket.
    functions, deprecated
        Lambda functions; those on a deprecated runtime.
    alarm_plan, alarm_result
        The runbook's alarms missing or different; what was done.
    applied
        Whether writes were allowed (``apply``).
    findings
        This report's findings.
    """

    log_groups: pd.DataFrame
    retention_plan: pd.DataFrame
    retention_result: pd.DataFrame
    stale_streams: pd.DataFrame
    stale_plan: pd.DataFrame
    stale_result: pd.DataFrame
    policies: pd.DataFrame
    unused_policies: pd.DataFrame
    snapshots: pd.DataFrame
    backup_objects: pd.DataFrame
    functions: pd.DataFrame
    deprecated: pd.DataFrame
    alarm_plan: pd.DataFrame
    alarm_result: pd.DataFrame
    applied: bool
    findings: pd.DataFrame = field(repr=False)


def gather_maintenance(
    ctx: Any,
    *,
    apply: bool = False,
    retention_days: int = 30,
    stale_days: int = 30,
) -> MaintenanceData:
    """Weekly and monthly hygiene: retention, stale streams, policies, backups, runtimes, alarms.

    Every write is planned first; with ``apply=False`` (the default) nothing is written.
    The findings describe the state found *before* any write.

    Parameters
    ----------
    ctx
        The report's context.
    apply
        Execute the retention, stale-stream and alarm plans. IAM policies are never deleted.
    retention_days
        The retention every log group should have.
    stale_days
        A stream whose last event is older than this is stale.

    Examples
    --------
    >>> data = gather_maintenance(ReportContext.open("maintenance"))   # doctest: +SKIP
    >>> data.retention_result["status"].unique().tolist()              # doctest: +SKIP
    ['planned']
    """
    cfg = ctx.config
    estate = ctx.estate
    session = ctx.session
    groups = ctx.gather("logs.DescribeLogGroups", inventory.log_groups)
    stale = ctx.gather("logs.DescribeLogStreams", maintenance.stale_streams, estate.log_groups,
                       stale_days=stale_days, now=ctx.now,
                       empty=pd.DataFrame(columns=["log_group", "name", "last_event", "age_days", "created"]))
    policies = ctx.gather("iam.ListPolicies", inventory.policies)
    snapshots = ctx.gather("rds.DescribeDBSnapshots", _snapshots, list(estate.db_instances))
    objects = ctx.gather("s3.ListObjectsV2", _backups, estate.backup_bucket, list(estate.backup_prefixes))
    functions = ctx.gather("lambda.ListFunctions", inventory.functions, name_contains=cfg.name_contains)
    existing = ctx.gather("cloudwatch.DescribeAlarms", inventory.alarms)
    topic = ctx.gather("sns.ListTopics", alarms_mod.resolve_topic_arn, cfg.sns_topic, empty="")
    alarm_plan = alarms_mod.plan_alarms(estate, existing, rulebook=cfg.rulebook, topic_arn=topic or None)

    findings = ctx.add_findings(rules.maintenance_findings(
        log_groups=_ok(ctx, "logs.DescribeLogGroups", groups),
        stale_streams=_ok(ctx, "logs.DescribeLogStreams", stale),
        policies=_ok(ctx, "iam.ListPolicies", policies),
        snapshots=_ok(ctx, "rds.DescribeDBSnapshots", snapshots),
        backup_objects=_ok(ctx, "s3.ListObjectsV2", objects),
        functions=_ok(ctx, "lambda.ListFunctions", functions),
        alarm_plan=alarm_plan if ctx.sources.get("cloudwatch.DescribeAlarms") == "ok" else None,
        estate=estate, rulebook=cfg.rulebook, now=ctx.now,
        retention_days=retention_days, stale_days=stale_days,
    ))

    retention_plan = maintenance.plan_retention(groups, days=retention_days)
    stale_plan = maintenance.plan_stale_stream_deletion(stale)
    deprecated_names = set(cfg.rulebook.get("deprecated_runtimes", []))
    return MaintenanceData(
        log_groups=groups,
        retention_plan=retention_plan,
        retention_result=maintenance.apply_retention(retention_plan, apply=apply, boto3_session=session),
        stale_streams=stale,
        stale_plan=stale_plan,
        stale_result=maintenance.apply_stale_stream_deletion(stale_plan, apply=apply, boto3_session=session),
        policies=policies,
        unused_policies=policies[policies["attachment_count"] == 0].reset_index(drop=True),
        snapshots=snapshots,
        backup_objects=objects,
        functions=functions,
        deprecated=functions[functions["runtime"].isin(deprecated_names)].reset_index(drop=True),
        alarm_plan=alarm_plan,
        alarm_result=alarms_mod.apply_alarms(alarm_plan, apply=apply, boto3_session=session),
        applied=bool(apply),
        findings=findings,
    )


def plan_view(plan: pd.DataFrame, result: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A plan's chosen columns beside what happened to each row (``status``), for display.

    Plans and results share row order (:func:`evilent_nb.maintenance.run_plan`).

    Returns
    -------
    pandas.DataFrame
        ``columns`` of the plan, then ``status`` (``planned``, ``done`` or ``error: ...``).

    Examples
    --------
    >>> plan = pd.DataFrame({"action": ["delete"], "target": ["g:s"], "log_group": ["g"]})
    >>> plan_view(plan, pd.DataFrame({"status": ["planned"]}), ["log_group"]).to_dict("records")
    [{'log_group': 'g', 'status': 'planned'}]
    """
    view = plan[[c for c in columns if c in plan.columns]].reset_index(drop=True).copy()
    view["status"] = result["status"].reset_index(drop=True) if "status" in result else pd.Series(dtype="string")
    return view


def _snapshots(db_ids: list[str], *, boto3_session: Any = None) -> pd.DataFrame:
    """Snapshots of each DB instance, in one frame."""
    parts = [inventory.db_snapshots(db=db, boto3_session=boto3_session) for db in db_ids]
    return pd.concat(parts, ignore_index=True) if parts else typed_frame([], "db_snapshots")


def _backups(bucket: str | None, prefixes: list[str], *, boto3_session: Any = None) -> pd.DataFrame:
    """The backup bucket's objects under each prefix, in one frame."""
    if not bucket:
        return typed_frame([], "backup_objects")
    parts = [inventory.backup_objects(bucket, prefix=p, boto3_session=boto3_session) for p in prefixes or [""]]
    return pd.concat(parts, ignore_index=True)




@dataclass
class IncidentData:
    """What the incident analysis gathered and concluded.

    Attributes
    ----------
    window
        The incident window (``start``..``end``).
    service
        The :class:`~evilent_nb.estate.Service` analysed.
    severity, reasons
        :func:`evilent_nb.incident.classify_incident`'s verdict.
    declared
        The declared severity (``None`` when none was given).
    escalation
        :func:`evilent_nb.incident.escalation_status` of the verdict.
    escalation_frame
        The same as a two-column table (``field, value``).
    onset
        When errors departed from their baseline (``None`` when they did not).
    timeline
        ``time, kind, what``: deploys and config changes, alarms, onset, first and last error.
    metrics
        The service's Lambda, API Gateway and RDS metrics over the window with the
        lookback before it (5-minute periods, one batched pull).
    rates_5xx
        5xx rate per period per API.
    triggers
        :func:`evilent_nb.incident.suspected_triggers`.
    signatures
        Error signatures in the window, redacted examples.
    headline
        The verdict in words for the report's banner: the service and the first reason
        (e.g. ``"product: the service is down (/health answered HTTP 503)"``).
    lines_around_onset
        ``timestamp, level, request_id, text``: the service's own log lines (redacted, Lambda
        prefix removed; the runtime's START/END/REPORT lines left out) from 5 minutes before
        to 5 minutes after the onset: the last 10 before it and the first 20 from it. A
        stack trace already shown is cut to its first line.
    lines_note
        What ``lines_around_onset`` holds, e.g. "30 of 94 log lines from 00:39 to 00:49 UTC".
    probes, db_instances
        The service's ``/health`` probe; the DB instances' status.
    playbook_id, playbook
        The playbook for the detected class and its steps (``ran_here`` marks the automated
        steps this report already performed).
    checklist
        The post-incident checklist.
    findings
        This report's findings.
    """

    window: Window
    service: Any
    severity: str
    reasons: list[str]
    headline: str
    declared: str | None
    escalation: dict[str, Any]
    escalation_frame: pd.DataFrame
    onset: pd.Timestamp | None
    timeline: pd.DataFrame
    metrics: pd.DataFrame
    rates_5xx: pd.DataFrame
    triggers: pd.DataFrame
    signatures: pd.DataFrame
    lines_around_onset: pd.DataFrame
    lines_note: str
    probes: pd.DataFrame
    db_instances: pd.DataFrame
    playbook_id: str | None
    playbook: pd.DataFrame
    checklist: pd.DataFrame
    findings: pd.DataFrame = field(repr=False)


#: The automated playbook steps the incident report performs itself.
_RAN_HERE = {
    "evilent_nb.inventory.stacks", "evilent_nb.inventory.stack_events", "evilent_nb.inventory.functions",
    "evilent_nb.logs.read_events", "evilent_nb.logs.error_signatures", "evilent_nb.probes.probe",
    "evilent_nb.inventory.db_instances", "evilent_nb.metrics.metric_data",
    "evilent_nb.incident.suspected_triggers",
}

#: Lines around the onset: how many before it and from it, and the window either side.
_BEFORE_ONSET, _FROM_ONSET, _AROUND = 10, 20, pd.Timedelta(minutes=5)
# The Lambda runtime's per-invocation bookkeeping: no evidence, and it triples the rows.
_PLATFORM_LINE = r"^(?:START|END|REPORT) RequestId:"


def _hourly_max(frame: pd.DataFrame, metric: str, stat: str, how: str = "sum") -> float | None:
    rows = frame[(frame["metric"] == metric) & (frame["stat"] == stat)]
    if rows.empty:
        return None
    per_hour = rows.set_index("timestamp").groupby(pd.Grouper(freq="1h"))["value"]
    values = per_hour.sum() if how == "sum" else per_hour.mean()
    return float(values.max()) if len(values) else None


def _hourly_5xx_max(frame: pd.DataFrame) -> float | None:
    rows = frame[frame["namespace"] == "AWS/ApiGateway"]
    if rows.empty:
        return None
    hourly = rows.set_index("timestamp").groupby([pd.Grouper(freq="1h"), "metric"])["value"].sum().unstack()
    if "Count" not in hourly or "5XXError" not in hourly:
        return None
    rate = (hourly["5XXError"] / hourly["Count"].where(hourly["Count"] > 0)).dropna()
    return float(rate.max()) if len(rate) else None


def gather_incident(
    ctx: Any,
    *,
    service: str,
    start: str | None = None,
    end: str | None = None,
    severity: str | None = None,
) -> IncidentData:
    """Incident analysis for one service: verdict, timeline, triggers, errors, playbook.

    The window defaults to the 3 hours before now. Errors are read from the service's log
    groups over the window plus the rulebook's lookback before it (``incident.lookback_min``,
    60 min), so the onset has a baseline and a deploy shortly before the window still counts
    as a trigger. The onset is found at minute precision from the logs, else from metrics.

    Parameters
    ----------
    ctx
        The report's context.
    service
        A discovered service's short name or stack name.
    start, end
        ISO-8601 UTC; default ``end`` = now, ``start`` = ``end`` - 3 h.
    severity
        A declared severity (P0-P3), shown beside the one the evidence supports.

    Examples
    --------
    >>> data = gather_incident(ReportContext.open("incident"), service="product")   # doctest: +SKIP
    >>> data.severity, data.triggers["resource"].tolist()                           # doctest: +SKIP
    ('P0', ['ProductServiceStack'])
    """
    from . import incident, playbooks
    from .redact import redact

    win = ctx.window(start=start, end=end)
    cfg, rulebook = ctx.config, ctx.config.rulebook
    estate = ctx.estate
    if getattr(ctx, "estate_error", None) is not None:
        raise ctx.estate_error  # without discovery there is no service to analyse
    svc = estate.service(service)
    lookback = pd.Timedelta(minutes=int(rulebook["incident"]["lookback_min"]))
    wide = Window(win.start - lookback.to_pytimedelta(), win.end)

    events = [ctx.gather(f"logs.FilterLogEvents:{g}", logs.read_events, g, window=wide, limit=100_000)
              for g in svc.log_groups]
    events = pd.concat(events, ignore_index=True) if events else typed_frame([], "log_events")
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    queries = (metrics.lambda_metrics(svc.functions) + metrics.apigw_metrics(svc.apis)
               + metrics.rds_metrics(estate.db_instances))
    frame = ctx.gather("cloudwatch.GetMetricData", metrics.metric_data, queries, wide, period=300, now=ctx.now)
    probes = ctx.record_frame("probes", probe, {svc.name: svc.health_url} if svc.health_url else {})
    dbs = ctx.gather("rds.DescribeDBInstances", inventory.db_instances, ids=list(estate.db_instances))
    stack_events = ctx.gather("cloudformation.DescribeStackEvents", inventory.stack_events, svc.stack, window=wide)
    fns = ctx.gather("lambda.ListFunctions", inventory.functions, name_contains=cfg.name_contains)
    fns = fns[fns["name"].isin(svc.functions)].reset_index(drop=True)
    alarm_frame = ctx.gather("cloudwatch.DescribeAlarms", inventory.alarms)

    onset = incident.error_onset(None, log_events=events, window=wide)
    if onset is None:
        onset = incident.error_onset(frame, resource=list(svc.functions), window=wide)
    triggers = incident.suspected_triggers(onset, stack_events, fns, f"{int(lookback.total_seconds() // 60)}min",
                                           estate=estate)

    in_window = events[(events["timestamp"] >= win.start) & (events["timestamp"] < win.end)]
    errors = in_window[(in_window["level"] == "ERROR")
                       | in_window["message"].str.contains(rulebook["log_errors"]["pattern"], regex=False)]
    signatures = logs.error_signatures(errors)
    signatures["example"] = signatures["example"].map(redact).astype("string")

    in_frame = frame[(frame["timestamp"] >= win.start) & (frame["timestamp"] < win.end)]
    probe_ok = bool(probes["ok"].all()) if len(probes) else None
    detail = None
    if len(probes) and not probe_ok:
        row = probes.iloc[0]
        detail = f"answered HTTP {row['status_code']}" if pd.notna(row["status_code"]) else str(row["error"])
    db_row = dbs.iloc[0] if len(dbs) else None
    verdict, reasons = incident.classify_incident(
        health_ok=probe_ok, health_detail=detail,
        rate_5xx_max=_hourly_5xx_max(in_frame),
        errors_per_hour_max=_hourly_max(in_frame[in_frame["namespace"] == "AWS/Lambda"], "Errors", "Sum"),
        latency_ms_max=_hourly_max(in_frame[in_frame["namespace"] == "AWS/Lambda"], "Duration", "Average", "mean"),
        db_available=(db_row["status"] == "available") if db_row is not None else None,
        db_status=str(db_row["status"]) if db_row is not None else None,
        declared=severity, rulebook=rulebook,
    )
    started = onset if onset is not None else pd.Timestamp(win.start)
    escalation = incident.escalation_status(verdict, started, ctx.now, rulebook=rulebook)
    findings = ctx.add_findings(incident.incident_findings(
        svc.name, severity=verdict, reasons=reasons, triggers=triggers,
        top_signature=signatures if len(signatures) else None, onset=onset, at=win.start,
        log_group=svc.log_groups[0] if svc.log_groups else None,
    ))
    # The playbook of the verdict's first reason; a minor incident (P3) calls for none.
    playbook_id = next((p for p in findings["playbook"].dropna() if p), None)
    db_id = estate.db_instances[0] if estate.db_instances else None
    if playbook_id:
        steps = playbooks.playbook_steps(
            playbook_id, svc, ctx.session.region_name, db=db_id,
            db_endpoint=str(db_row["endpoint"]) if db_row is not None and pd.notna(db_row["endpoint"]) else None)
    else:
        steps = typed_frame([], playbooks.STEPS_SCHEMA)
    steps["ran_here"] = (steps["kind"] == "automated").astype(bool) & steps["command_or_function"].isin(
        sorted(_RAN_HERE)).astype(bool)

    around, lines_note = _lines_around(events, onset)

    timeline = _timeline(win, onset, triggers, stack_events, alarm_frame, svc, errors)
    return IncidentData(
        window=win, service=svc, severity=verdict, reasons=[str(r) for r in reasons],
        headline=f"{svc.name}: {reasons[0]}", declared=severity,
        escalation=escalation, escalation_frame=_escalation_frame(escalation, onset is not None),
        onset=onset, timeline=timeline, metrics=frame, rates_5xx=metrics.apigw_5xx_rate(frame),
        triggers=triggers, signatures=signatures, lines_around_onset=around, lines_note=lines_note,
        probes=probes, db_instances=dbs, playbook_id=playbook_id, playbook=steps,
        checklist=playbooks.checklist_frame(verdict), findings=findings,
    )


def _lines_around(events: pd.DataFrame, onset: pd.Timestamp | None) -> tuple[pd.DataFrame, str]:
    """The log lines that show the change at the onset, and a note saying what they are."""
    from .redact import redact

    columns = ["timestamp", "level", "request_id", "text"]
    if onset is None:
        return pd.DataFrame(columns=columns), "No error onset was found, so there is nothing to show here."
    near = events[(events["timestamp"] >= onset - _AROUND) & (events["timestamp"] <= onset + _AROUND)]
    texts = pd.Series([logs.parse_line(str(m)).text.strip() for m in near["message"]], index=near.index, dtype=object)
    own = near[~texts.str.contains(_PLATFORM_LINE, regex=True)]
    picked = pd.concat([own[own["timestamp"] < onset].tail(_BEFORE_ONSET),
                        own[own["timestamp"] >= onset].head(_FROM_ONSET)])
    seen: set[str] = set()
    shown = []
    for text in texts[picked.index]:
        first, _, rest = text.partition("\n")
        if rest and first in seen:
            text = f"{first}\n    (stack trace as above)"
        seen.add(first)
        shown.append(redact(text)[:400])
    around = picked[["timestamp", "level", "request_id"]].copy()
    around["text"] = pd.Series(shown, index=picked.index, dtype="string")
    lo, hi = onset - _AROUND, onset + _AROUND
    before = int((picked["timestamp"] < onset).sum())
    note = (f"{len(around)} of the {len(near)} log lines from {lo:%H:%M} to {hi:%H:%M} UTC: {before} before the "
            f"onset at {onset:%H:%M} UTC and {len(around) - before} from it (at most {_BEFORE_ONSET} and "
            f"{_FROM_ONSET}), leaving out the runtime's START/END/REPORT lines; a stack trace already shown "
            "is cut to its first line.")
    return around.reset_index(drop=True), note


def _escalation_frame(escalation: dict[str, Any], from_onset: bool) -> pd.DataFrame:
    """The escalation status as ``field, value`` rows that read without the docs."""
    e = escalation
    since = "the error onset" if from_onset else "the start of the window (no onset was found)"
    if e["next_level"] is not None:
        nxt = f"level {e['next_level']} ({e['next_who']}) at {e['next_escalation_at']:%Y-%m-%d %H:%M} UTC if unresolved"
    else:
        nxt = "none: the runbook escalates no further at this severity"
    rows = [
        ("severity", e["severity"]),
        ("who responds now", f"level {e['level']}: {e['who']} ({e['contact']})"),
        ("channel", e["channel"]),
        ("open for", f"{e['open_minutes']:,.0f} min, counted from {since}"),
        ("response time", f"{e['response_minutes']:,.0f} min, due {e['response_deadline']:%Y-%m-%d %H:%M} UTC"
                          + (" (passed)" if e["breached"] else "")),
        ("next escalation", nxt),
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def _timeline(
    win: Window,
    onset: pd.Timestamp | None,
    triggers: pd.DataFrame,
    stack_events: pd.DataFrame,
    alarm_frame: pd.DataFrame,
    svc: Any,
    errors: pd.DataFrame,
) -> pd.DataFrame:
    """``time, kind, what``, in time order: what happened around the incident."""
    rows: list[dict[str, Any]] = []
    own = stack_events[stack_events["logical_id"] == svc.stack] if len(stack_events) else stack_events
    # A trigger's row already names the event it starts with.
    starts = {(pd.Timestamp(t), str(r)) for t, r in zip(triggers["time"], triggers["resource"], strict=True)}
    for _, ev in own.iterrows():
        if (pd.Timestamp(ev["timestamp"]), str(ev["stack"])) in starts:
            continue
        rows.append({"time": ev["timestamp"], "kind": "stack event", "what": f"{ev['stack']} {ev['status']}"})
    for _, tr in triggers.iterrows():
        rows.append({"time": tr["time"], "kind": f"suspected trigger ({tr['kind']})",
                     "what": f"{tr['resource']}: {tr['detail']} ({tr['minutes_before_onset']:.0f} min before onset)"})
    if onset is not None:
        rows.append({"time": onset, "kind": "error onset", "what": "errors depart from their baseline"})
    if len(errors):
        for kind, row in (("first error", errors.iloc[0]), ("last error", errors.iloc[-1])):
            text = logs.parse_line(str(row["message"])).text.strip().splitlines()
            rows.append({"time": row["timestamp"], "kind": kind, "what": (text[0] if text else "")[:160]})
    for _, al in alarm_frame.iterrows():
        dims = al["dimensions"] if isinstance(al["dimensions"], dict) else {}
        if dims.get("FunctionName") in svc.functions and pd.notna(al["state_updated"]) \
                and win.start - pd.Timedelta(hours=1) <= al["state_updated"] <= win.end:
            rows.append({"time": al["state_updated"], "kind": "alarm", "what": f"{al['name']} is {al['state']}"})
    frame = pd.DataFrame(rows, columns=["time", "kind", "what"])
    if frame.empty:
        return frame
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    from .redact import redact

    frame["what"] = frame["what"].map(redact)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
