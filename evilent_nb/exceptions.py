"""One exception tree for evilent-nb.

::

    EvilentNbError
    ├── BadInputError                 exit code 2: the user asked for something that cannot be
    │   ├── UnknownReportError
    │   ├── ParameterError
    │   ├── WindowError
    │   ├── UnknownServiceError
    │   └── ConfigError               evilent.yml unreadable or malformed
    ├── AwsAccessError                exit code 3: AWS cannot be used at all
    │   ├── NoRegionError
    │   ├── NoCredentialsError
    │   ├── AccessDeniedError
    │   └── EndpointUnreachableError
    ├── DataSourceError               one source failed; reports turn it into `data_unavailable`
    │   └── InsightsQueryError        a Logs Insights query ended Failed/Cancelled/Timeout/Unknown
    ├── EvidenceError                 an evidence bundle is missing, unreadable or has no answer
    └── ReportExecutionError          exit code 4: a cell of a report failed

Every error's ``str()`` is one line a person can act on.
"""

from __future__ import annotations

__all__ = [
    "EvilentNbError",
    "BadInputError",
    "UnknownReportError",
    "ParameterError",
    "WindowError",
    "UnknownServiceError",
    "ConfigError",
    "AwsAccessError",
    "NoRegionError",
    "NoCredentialsError",
    "AccessDeniedError",
    "EndpointUnreachableError",
    "DataSourceError",
    "InsightsQueryError",
    "EvidenceError",
    "ReportExecutionError",
]


class EvilentNbError(Exception):
    """Root of every error raised by evilent-nb."""

    exit_code: int = 4


class BadInputError(EvilentNbError, ValueError):
    """The caller asked for something that cannot be (exit code 2)."""

    exit_code = 2


class UnknownReportError(BadInputError):
    """No report has that name."""


class ParameterError(BadInputError):
    """A report parameter is unknown, missing or of the wrong type."""


class WindowError(BadInputError):
    """A time window is malformed, reversed, in the future or older than CloudWatch keeps."""


class UnknownServiceError(BadInputError, KeyError):
    """No discovered service has that short name or stack name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(BadInputError):
    """evilent.yml cannot be read or has a malformed value."""


class AwsAccessError(EvilentNbError):
    """AWS cannot be used at all (exit code 3)."""

    exit_code = 3


class NoRegionError(AwsAccessError):
    """No region is configured."""


class NoCredentialsError(AwsAccessError):
    """No credentials are configured."""


class AccessDeniedError(AwsAccessError):
    """The credentials lack a permission the report needs."""


class EndpointUnreachableError(AwsAccessError):
    """The AWS endpoint (or AWS_ENDPOINT_URL) does not answer."""


class DataSourceError(EvilentNbError):
    """One data source failed (throttled past its retries, timed out, ...).

    Parameters
    ----------
    source
        The source that failed, e.g. ``"cloudwatch.GetMetricData"`` or a log group.
    message
        What went wrong.
    """

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class InsightsQueryError(DataSourceError):
    """A Logs Insights query ended in a status other than Complete."""

    def __init__(self, status: str, query: str, query_id: str | None = None) -> None:
        super().__init__(
            "logs.StartQuery", f"Insights query {query_id or ''} ended {status}: {query!r}".replace("  ", " ")
        )
        self.status = status
        self.query = query
        self.query_id = query_id


class EvidenceError(EvilentNbError):
    """An evidence bundle cannot be read, or holds no recorded answer for a call."""

    exit_code = 2


class ReportExecutionError(EvilentNbError):
    """A cell of a report notebook failed (exit code 4).

    Parameters
    ----------
    report
        Report name.
    cell_index
        Index of the failing cell, when known.
    ename, evalue
        The exception's name and value inside the kernel.
    notebook_path
        Where the executed notebook was kept for debugging.
    """

    exit_code = 4

    def __init__(
        self,
        report: str,
        *,
        cell_index: int | None = None,
        ename: str = "",
        evalue: str = "",
        notebook_path: str | None = None,
    ) -> None:
        self.report = report
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.notebook_path = notebook_path
        where = f"cell {cell_index}" if cell_index is not None else "a cell"
        first = (evalue or "").strip().splitlines()[0] if (evalue or "").strip() else ""
        msg = f"report {report!r} failed in {where}: {ename}: {first}".rstrip(": ")
        if notebook_path:
            msg += f" (executed notebook kept at {notebook_path})"
        super().__init__(msg)
