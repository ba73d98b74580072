"""evilent-nb: the EVILENT operations runbook as a library and parameterized notebooks.

Sources pull AWS state into tidy pandas frames, rules judge them against the runbook's
thresholds, and reports (papermill notebooks) turn both into HTML and ``summary.json``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .aws import ApiUsage, client, get_session, usage  # noqa: E402
from .config import Config, load_config  # noqa: E402
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
from .timeframe import Window, choose_period, parse_window  # noqa: E402

__all__ = [
    "__version__",
    # aws
    "ApiUsage",
    "client",
    "get_session",
    "usage",
    # config
    "Config",
    "load_config",
    # timeframe
    "Window",
    "choose_period",
    "parse_window",
    # exceptions
    "AccessDeniedError",
    "AwsAccessError",
    "BadInputError",
    "ConfigError",
    "DataSourceError",
    "EndpointUnreachableError",
    "EvidenceError",
    "EvilentNbError",
    "InsightsQueryError",
    "NoCredentialsError",
    "NoRegionError",
    "ParameterError",
    "ReportExecutionError",
    "UnknownReportError",
    "UnknownServiceError",
    "WindowError",
]
