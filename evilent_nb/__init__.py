"""evilent-nb: the EVILENT operations runbook as a library and parameterized notebooks.

Sources pull AWS state into tidy pandas frames, rules judge them against the runbook's
thresholds, and reports (papermill notebooks) turn both into HTML and ``summary.json``.

Modules, by layer:

- access and time: :mod:`~evilent_nb.aws`, :mod:`~evilent_nb.timeframe`, :mod:`~evilent_nb.config`
- sources (frames): :mod:`~evilent_nb.estate`, :mod:`~evilent_nb.metrics`, :mod:`~evilent_nb.logs`,
  :mod:`~evilent_nb.cost`, :mod:`~evilent_nb.inventory`, :mod:`~evilent_nb.probes`
- judgement: :mod:`~evilent_nb.rules`, :mod:`~evilent_nb.incident`, :mod:`~evilent_nb.playbooks`
- writes, as plans: :mod:`~evilent_nb.alarms`, :mod:`~evilent_nb.maintenance`
- views: :mod:`~evilent_nb.plots`; reports: :mod:`~evilent_nb.reports`, :mod:`~evilent_nb.report`
- the local AWS stand-in: :mod:`evilent_nb.sandbox` (needs the ``sandbox`` extra)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .alarms import apply_alarms, check_missing_alarm, plan_alarms, resolve_topic_arn  # noqa: E402
from .aws import ApiUsage, client, get_session, usage  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .cost import anomalies, cost_and_usage, month_to_date, run_rate_forecast, week_over_week  # noqa: E402
from .estate import Estate, Service, discover  # noqa: E402
from .exceptions import (  # noqa: E402
    AccessDeniedError,
    AwsAccessError,
    BadInputError,
    ConfigError,
    DataSourceError,
    EndpointUnreachableError,
    EvidenceError,
    EvilentNbError,
    InsightsQueryError,
    NoCredentialsError,
    NoRegionError,
    ParameterError,
    ReportExecutionError,
    UnknownReportError,
    UnknownServiceError,
    WindowError,
)
from .iam import iam_policy  # noqa: E402
from .incident import (  # noqa: E402
    classify_incident,
    error_onset,
    escalation_status,
    incident_findings,
    suspected_triggers,
)
from .logs import error_counts, error_signatures, read_events, run_insights, start_query, wait_query  # noqa: E402
from .maintenance import (  # noqa: E402
    apply_retention,
    apply_stale_stream_deletion,
    plan_retention,
    plan_stale_stream_deletion,
    stale_streams,
)
from .metrics import (  # noqa: E402
    MetricQuery,
    apigw_5xx_rate,
    apigw_metrics,
    error_rate,
    lambda_metrics,
    metric_data,
    pivot_wide,
    rds_metrics,
)
from .playbooks import checklist_frame, playbook, playbook_steps  # noqa: E402
from .probes import probe  # noqa: E402
from .redact import redact, redact_frame, redact_obj, redact_params  # noqa: E402
from .report import REPORTS, ReportContext, RunResult, run_report  # noqa: E402
from .rules import (  # noqa: E402
    SEVERITIES,
    at_or_above,
    cost_findings,
    data_unavailable,
    findings_frame,
    health_findings,
    maintenance_findings,
    status_of,
)
from .timeframe import Window, choose_period, parse_window  # noqa: E402

__all__ = [
    "__version__",
    # access, time, config
    "ApiUsage", "client", "get_session", "usage",
    "Window", "choose_period", "parse_window",
    "Config", "load_config",
    # sources
    "Estate", "Service", "discover",
    "MetricQuery", "metric_data", "lambda_metrics", "apigw_metrics", "rds_metrics",
    "pivot_wide", "error_rate", "apigw_5xx_rate",
    "read_events", "error_counts", "error_signatures", "run_insights", "start_query", "wait_query",
    "cost_and_usage", "month_to_date", "run_rate_forecast", "week_over_week", "anomalies",
    "probe",
    "redact", "redact_frame", "redact_obj", "redact_params",
    # judgement
    "SEVERITIES", "findings_frame", "status_of", "at_or_above", "data_unavailable",
    "health_findings", "cost_findings", "maintenance_findings",
    "error_onset", "suspected_triggers", "classify_incident", "escalation_status", "incident_findings",
    "playbook", "playbook_steps", "checklist_frame",
    # writes, as plans
    "plan_alarms", "apply_alarms", "check_missing_alarm", "resolve_topic_arn",
    "plan_retention", "apply_retention", "stale_streams", "plan_stale_stream_deletion",
    "apply_stale_stream_deletion",
    # reports
    "REPORTS", "ReportContext", "RunResult", "run_report", "iam_policy",
    # exceptions
    "EvilentNbError", "BadInputError", "UnknownReportError", "ParameterError", "WindowError",
    "UnknownServiceError", "ConfigError", "AwsAccessError", "NoRegionError", "NoCredentialsError",
    "AccessDeniedError", "EndpointUnreachableError", "DataSourceError", "InsightsQueryError",
    "EvidenceError", "ReportExecutionError",
]
