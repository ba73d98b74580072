"""Generate the four report notebooks: narrative plus one package call per code cell.

The committed ``notebooks/*.ipynb`` are this script's output (tests/test_notebooks.py
checks that they match). Change a report's layout here, then run::

    .venv/bin/python tools/make_notebooks.py            # writes notebooks/
"""
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

COMMON_PARAMS = '''region = None  # AWS region (default: the boto3 chain, e.g. AWS_DEFAULT_REGION)
profile = None  # AWS profile (default: the boto3 chain, e.g. AWS_PROFILE)
config = None  # path to evilent.yml (default: ./evilent.yml when present)
'''
INTERNAL = '''_now = None  # internal: the frozen now of the run (ISO-8601 UTC); None means the current time
_result_path = None  # internal: where ctx.finish() hands the result to the runner
_evidence_dir = None  # internal: the evidence bundle to record into or replay from
_replay = False  # internal: answer AWS calls from the evidence bundle'''


def open_ctx(report, params):
    plist = ", ".join(f'"{p}": {p}' for p in params)
    return (
        "from IPython.display import HTML\n\n"
        "from evilent_nb import plots, reports\n"
        "from evilent_nb.report import ReportContext\n\n"
        f'ctx = ReportContext.open("{report}", region=region, profile=profile, config=config, now=_now,\n'
        "                         result_path=_result_path, evidence_dir=_evidence_dir, replay=_replay,\n"
        f"                         parameters={{{plist}}})"
    )


def nb(cells):
    out = new_notebook()
    out.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    built = []
    for i, (kind, src, *tags) in enumerate(cells):
        c = new_markdown_cell(src) if kind == "md" else new_code_cell(src)
        if tags:
            c.metadata["tags"] = list(tags)
        c["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives no diff noise
        built.append(c)
    out.cells = built
    return out


def banner(report):
    return (f'HTML(plots.status_banner(ctx.status, report="{report}", window=data.window, '
            "counts=ctx.findings, generated_at=ctx.now))")


health = nb([
    ("md", "# EVILENT daily health check\n\nThe runbook's 09:00 check, grown up: every discovered service's stack, "
           "function, `/health` probe, error lines and metrics over the window, judged against the runbook's "
           "thresholds. Findings come first; the evidence behind them follows."),
    ("code", COMMON_PARAMS + 'window = "24h"  # Nh, Nd, Nw or START/END in ISO-8601 UTC\n' + INTERNAL, "parameters"),
    ("code", open_ctx("health", ["region", "profile", "config", "window"])),
    ("code", "data = reports.gather_health(ctx, window=window)"),
    ("code", banner("health")),
    ("md", "## Findings\n\nMost severe first. Playbook ids refer to the runbook's incident playbooks."),
    ("code", "plots.findings_table(ctx.findings)"),
    ("md", "## `/health` probes"),
    ("code", "plots.probe_bars(data.probes)"),
    ("md", "## Lambda errors per hour"),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Errors", stat="Sum", namespace="AWS/Lambda",\n'
             '                        threshold=[(10, "P2 alert > 10/h"), (100, "P1 critical > 100/h")],\n'
             '                        window=data.window)'),
    ("md", "## API Gateway 5xx rate per hour"),
    ("code", 'plots.rate_timeseries(data.rates_5xx, title="API Gateway 5xx rate by API", window=data.window,\n'
             '                      threshold=[(0.05, "P2 > 5 %"), (0.10, "P1 > 10 %")])'),
    ("md", "## Lambda invocations and duration"),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Invocations", stat="Sum", namespace="AWS/Lambda",\n'
             '                        threshold=[(10_000, "P3 investigate > 10,000/h")], window=data.window)'),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Duration", stat="Average", namespace="AWS/Lambda",\n'
             '                        threshold=[(5000, "P2 > 5000 ms")], window=data.window)'),
    ("md", "## ERROR lines per log group"),
    ("code", "plots.table(data.error_counts)"),
    ("md", "## CloudFormation stacks"),
    ("code", 'plots.table(data.stacks, columns=["name", "status", "created", "last_updated", "status_reason"])'),
    ("md", "## Lambda functions"),
    ("code", 'plots.table(data.functions, columns=["name", "runtime", "last_modified", "memory_mb", "timeout_s"])'),
    ("md", "## Database"),
    ("code", 'plots.table(data.db_instances, columns=["id", "engine", "engine_version", "status", "instance_class"])'),
    ("code", 'plots.metric_timeseries(data.metrics, metric="DatabaseConnections", stat="Average", namespace="AWS/RDS",\n'
             '                        window=data.window)'),
    ("md", "## Alarms in ALARM"),
    ("code", 'plots.table(data.alarms_firing, columns=["name", "metric", "threshold", "state_updated", "state_reason"],\n'
             '            empty="No alarm is in ALARM")'),
    ("md", "## Discovered services"),
    ("code", 'plots.table(data.services, columns=["service", "stack", "status", "functions", "apis", "health_url"])'),
    ("md", "## API usage of this report"),
    ("code", "ctx.finish()\nplots.table(plots.usage_table(ctx.usage))"),
])

cost = nb([
    ("md", "# EVILENT weekly cost review\n\nThe runbook's cost review: Cost Explorer's unblended cost by AWS service, "
           "month to date against the budget, the run-rate to month end, the daily trend, week-over-week movers and "
           "anomalies. **One** GetCostAndUsage pull (0.01 USD a request) feeds every table and chart."),
    ("code", COMMON_PARAMS + 'window = "35d"  # whole days: Nd, Nw or START/END in ISO-8601 UTC\n'
             "monthly_budget_usd: float = None  # monthly budget in USD (default: from the rulebook, 100)\n" + INTERNAL,
     "parameters"),
    ("code", open_ctx("cost", ["region", "profile", "config", "window", "monthly_budget_usd"])),
    ("code", "data = reports.gather_cost(ctx, window=window, monthly_budget_usd=monthly_budget_usd)"),
    ("code", banner("cost")),
    ("md", "## Findings"),
    ("code", "plots.findings_table(ctx.findings)"),
    ("md", "## Month to date and run-rate forecast"),
    ("code", 'plots.table(plots.forecast_table(data.forecast, budget_usd=data.budget_usd), usd=["usd"],\n'
             '            percent=["share_of_budget"])'),
    ("md", "Month to date by service, most expensive first (USD)."),
    ("code", 'plots.table(data.month_to_date, usd=["amount"])'),
    ("md", "## Daily cost by service\n\nHatched days are still `Estimated` by Cost Explorer and may change."),
    ("code", "plots.cost_stacked(data.cost, budget_usd=data.budget_usd, run_rate=data.forecast)"),
    ("md", "## Week over week"),
    ("code", 'plots.table(data.week_over_week, usd=["this_week", "last_week", "change_usd"], percent=["change_pct"])'),
    ("md", "## Anomalies\n\nA complete day above its service's trailing baseline (mean + 3σ of the previous 14 days) "
           "and above 1 USD."),
    ("code", 'plots.table(data.anomalies, usd=["amount", "baseline_mean", "baseline_std", "threshold"],\n'
             '            empty="No anomaly: every complete day stayed within its baseline")'),
    ("md", "## Estimated days"),
    ("code", 'plots.table(data.estimated_days, usd=["amount"], empty="No estimated day: every day is final")'),
    ("md", "## API usage of this report"),
    ("code", "ctx.finish()\nplots.table(plots.usage_table(ctx.usage))"),
])

maint = nb([
    ("md", "# EVILENT maintenance\n\nThe runbook's weekly and monthly hygiene. Every write is shown first as a "
           "plan; it runs only when the report is run with `-p apply true`. IAM policies are only ever listed, "
           "never deleted: the runbook says *careful*."),
    ("code", COMMON_PARAMS + "apply = False  # execute the retention, stale-stream and alarm plans (default: plan only)\n"
             "retention_days = 30  # the retention every log group should have, in days\n"
             "stale_days = 30  # a log stream whose last event is older than this is stale\n" + INTERNAL,
     "parameters"),
    ("code", open_ctx("maintenance", ["region", "profile", "config", "apply", "retention_days", "stale_days"])),
    ("code", "data = reports.gather_maintenance(ctx, apply=apply, retention_days=retention_days, stale_days=stale_days)"),
    ("code", 'HTML(plots.status_banner(ctx.status, report="maintenance", counts=ctx.findings, generated_at=ctx.now))'),
    ("md", "## Findings"),
    ("code", "plots.findings_table(ctx.findings)"),
    ("md", "## Plans and what was done"),
    ("code", "plots.table(plots.plan_summary(data))"),
    ("md", "### Log retention"),
    ("code", 'plots.table(reports.plan_view(data.retention_plan, data.retention_result,\n'
             '                              ["log_group", "current_retention_days", "new_retention_days"]),\n'
             '            empty="Every log group keeps its logs as it should")'),
    ("md", "### Stale log streams"),
    ("code", 'plots.table(reports.plan_view(data.stale_plan, data.stale_result,\n'
             '                              ["log_group", "log_stream", "last_event", "age_days"]),\n'
             '            empty="No stale log stream")'),
    ("md", "### Runbook alarms"),
    ("code", 'plots.table(reports.plan_view(data.alarm_plan, data.alarm_result,\n'
             '                              ["action", "name", "function", "metric", "statistic", "threshold", "differences"]),\n'
             '            empty="Every runbook alarm exists as the runbook says")'),
    ("md", "## Unused IAM policies (listed, never deleted)"),
    ("code", 'plots.table(data.unused_policies, columns=["name", "arn", "created"], empty="No unused policy")'),
    ("md", "## Backups\n\nThe newest RDS snapshots and the newest dumps in the backup bucket."),
    ("code", 'plots.table(data.snapshots.sort_values("created", ascending=False), max_rows=10, empty="No snapshot")'),
    ("code", 'plots.table(data.backup_objects.sort_values("last_modified", ascending=False), max_rows=10,\n'
             '            empty="No dump in the backup bucket")'),
    ("md", "## Lambda runtimes"),
    ("code", 'plots.table(data.functions, columns=["name", "runtime", "last_modified"])'),
    ("md", "## API usage of this report"),
    ("code", "ctx.finish()\nplots.table(plots.usage_table(ctx.usage))"),
])

incident = nb([
    ("md", "# EVILENT incident analysis\n\nFor the on-call engineer and the post-mortem: what the evidence says about one "
           "service over the incident window. The classification follows the runbook's severities; the escalation "
           "status its table; the playbook its steps (automated ones were run by this report, the rest are commands "
           "for a person). Rerun it offline with `evilent-nb run incident --replay DIR/incident.evidence`."),
    ("code", COMMON_PARAMS + "service = None  # required: short name of a discovered service (e.g. product) or its stack name\n"
             "start = None  # ISO-8601 UTC (default: end - 3 h)\n"
             "end = None  # ISO-8601 UTC (default: now)\n"
             "severity = None  # a declared severity P0-P3, shown beside the one the evidence supports\n" + INTERNAL,
     "parameters"),
    ("code", open_ctx("incident", ["region", "profile", "config", "service", "start", "end", "severity"])),
    ("code", "data = reports.gather_incident(ctx, service=service, start=start, end=end, severity=severity)"),
    ("code", 'HTML(plots.status_banner(ctx.status, report="incident", window=data.window, counts=ctx.findings,\n'
             '                          generated_at=ctx.now, headline=data.headline))'),
    ("md", "## Classification and escalation\n\nThe severity the evidence supports and why, then who responds "
           "per the runbook's escalation table."),
    ("code", "plots.findings_table(ctx.findings)"),
    ("code", "plots.table(data.escalation_frame)"),
    ("md", "## Timeline\n\nDeploys and configuration changes, the error onset, alarms, and the first and last error "
           "in the window."),
    ("code", "plots.table(data.timeline)"),
    ("md", "## Errors, invocations, 5xx and duration\n\nEach value covers its whole period (a flat step). Dotted lines "
           "mark deploys and changes, the solid red line the error onset; the grey band is the time before "
           "the window, kept as a baseline."),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Errors", stat="Sum", namespace="AWS/Lambda", changes=data.triggers,\n'
             '                        onset=data.onset, threshold=[(10, "P2 alert > 10/h")], window=data.window)'),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Invocations", stat="Sum", namespace="AWS/Lambda",\n'
             '                        changes=data.triggers, onset=data.onset, window=data.window)'),
    ("code", 'plots.rate_timeseries(data.rates_5xx, title="API Gateway 5xx rate", changes=data.triggers, onset=data.onset,\n'
             '                      threshold=[(0.05, "P2 > 5 %"), (0.10, "P1 > 10 %")], window=data.window)'),
    ("code", 'plots.metric_timeseries(data.metrics, metric="Duration", stat="Average", namespace="AWS/Lambda",\n'
             '                        changes=data.triggers, onset=data.onset, threshold=[(5000, "P2 > 5000 ms")],\n'
             '                        window=data.window)'),
    ("md", "## Suspected triggers\n\nDeploys and configuration changes in the hour before the errors began, closest first."),
    ("code", "plots.table(data.triggers, empty=\"No suspected trigger: no deploy or change in the hour before the onset, or no onset was found\")"),
    ("md", "## Top error signatures\n\nSimilar errors grouped (ids, numbers and addresses normalised); one redacted example each."),
    ("code", "plots.error_signature_bars(data.signatures)"),
    ("code", 'plots.table(data.signatures, columns=["signature", "count", "first_seen", "last_seen", "example"],\n'
             '            pre=["example"], max_rows=10)'),
    ("md", "## Log lines around the onset\n\nWhat the service logged just before and just after the errors began, "
           "redacted."),
    ("code", 'plots.table(data.lines_around_onset, pre=["text"], caption=data.lines_note, empty=data.lines_note)'),
    ("md", "## Health probe and database"),
    ("code", "plots.table(data.probes)"),
    ("code", 'plots.table(data.db_instances, columns=["id", "engine", "status", "instance_class"])'),
    ("code", 'plots.metric_timeseries(data.metrics, metric="DatabaseConnections", stat="Average", namespace="AWS/RDS",\n'
             '                        changes=data.triggers, onset=data.onset, window=data.window)'),
    ("md", "## Playbook\n\nAutomated, read-only steps marked `ran_here` were performed by this report; the others are "
           "for a person and are shown as the exact command."),
    ("code", "plots.table(data.playbook, empty=\"No runbook playbook applies: the evidence shows a minor issue at most (P3)\")"),
    ("md", "## Post-incident checklist"),
    ("code", "plots.table(data.checklist)"),
    ("md", "## API usage of this report"),
    ("code", "ctx.finish()\nplots.table(plots.usage_table(ctx.usage))"),
])

OUT = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent / "notebooks")

for name, book in [("incident", incident), ("health", health), ("cost_review", cost), ("maintenance", maint)]:
    nbformat.validate(book)
    nbformat.write(book, f"{OUT}/{name}.ipynb")
