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
from .probes import probe
from .timeframe import Window

__all__ = [
    "CostData",
    "HealthData",
    "MaintenanceData",
    "gather_cost",
    "gather_health",
    "gather_maintenance",
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
    """
    win = ctx.window(window)
    cfg = ctx.config
    estate = ctx.estate
    stacks = ctx.gather("cloudformation.DescribeStacks", inventory.stacks, name_contains=cfg.name_contains)
    functions = ctx.gather("lambda.ListFunctions", inventory.functions, name_contains=cfg.name_contains)
    urls = {s.name: s.health_url for s in estate.services}
    probes = ctx.record_frame("probes", probe, urls)
    errors = ctx.gather("logs.FilterLogEvents", logs.error_counts, estate.log_groups,
                        window=win, pattern=cfg.rulebook["log_errors"]["pattern"])
    queries = (metrics.lambda_metrics(estate.functions) + metrics.apigw_metrics(estate.apis)
               + metrics.rds_metrics(estate.db_instances))
    period = int(cfg.rulebook["lambda_errors"]["period_s"])
    frame = ctx.gather("cloudwatch.GetMetricData", metrics.metric_data, queries, win, period=period)
    dbs = ctx.gather("rds.DescribeDBInstances", inventory.db_instances, ids=list(estate.db_instances))
    alarm_frame = ctx.gather("cloudwatch.DescribeAlarms", inventory.alarms)
    findings = ctx.add_findings(rules.health_findings(
        estate=estate,
        stacks=_ok(ctx, "cloudformation.DescribeStacks", stacks),
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
    """
    win = ctx.window(window)
    rulebook = ctx.config.rulebook
    budget = float(monthly_budget_usd) if monthly_budget_usd is not None else float(rulebook["budget"]["monthly_usd"])
    month_start = pd.Timestamp(ctx.now).tz_convert("UTC").normalize().replace(day=1)
    pull = Window(min(win.start, month_start.to_pydatetime()), win.end)
    cost = ctx.gather("ce.GetCostAndUsage", cost_mod.cost_and_usage, pull)
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


def _snapshots(db_ids: list[str], *, boto3_session: Any = None) -> pd.DataFrame:
    """Snapshots of each DB instance, in one frame."""
    parts = [inventory.db_snapshots(db=db, boto3_session=boto3_session) for db in db_ids]
    return pd.concat(parts, ignore_index=True) if parts else _empty("db_snapshots")


def _backups(bucket: str | None, prefixes: list[str], *, boto3_session: Any = None) -> pd.DataFrame:
    """The backup bucket's objects under each prefix, in one frame."""
    if not bucket:
        return _empty("backup_objects")
    parts = [inventory.backup_objects(bucket, prefix=p, boto3_session=boto3_session) for p in prefixes or [""]]
    return pd.concat(parts, ignore_index=True)


def _empty(schema: str) -> pd.DataFrame:
    from .frames import typed_frame

    return typed_frame([], schema)
