"""Sessions, clients, error translation and API-call accounting.

Every AWS-facing function in evilent-nb gets its clients from :func:`client`, which
applies one botocore :class:`~botocore.config.Config` (retry mode ``standard`` so that
Cost Explorer's and Insights' ``LimitExceededException`` is retried, a user agent
suffix ``evilent-nb/<version>``) and attaches an :class:`ApiUsage` counter to the
session, so a report can say how many calls it made and what they cost.

Access follows the standard boto3 chain (``AWS_PROFILE``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` ...). Nothing here knows about the sandbox.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions as bex
from botocore.config import Config

from . import __version__
from .exceptions import (
    AccessDeniedError,
    AwsAccessError,
    DataSourceError,
    EndpointUnreachableError,
    NoCredentialsError,
    NoRegionError,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "ApiUsage",
    "client",
    "default_config",
    "ensure_session",
    "get_session",
    "translate_errors",
    "usage",
]

DEFAULT_MAX_ATTEMPTS = 5
#: Cost Explorer has one endpoint, whatever region the session uses.
_GLOBAL_REGIONS = {"ce": "us-east-1"}

_HOW_TO = (
    "configure AWS (AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_DEFAULT_REGION), "
    "or try `make demo` for the local sandbox"
)

_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",  # S3's word for an unknown key
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "AuthorizationError",
    "403",
}
# Credentials that were valid and no longer are (session tokens last 1-12 hours), or a
# clock too far off to sign: no permission would help, so the message says what would.
_EXPIRED = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "RequestTimeTooSkewed",
}

# Price per call (USD) and per unit, from the AWS price list (reference/aws.md).
_PRICE_PER_REQUEST = {
    "ce.GetCostAndUsage": 0.01,
    "ce.GetCostForecast": 0.01,
    "ce.GetAnomalies": 0.01,
    "ce.GetDimensionValues": 0.01,
    "cloudwatch.GetMetricStatistics": 0.00001,
    "cloudwatch.ListMetrics": 0.00001,
    "cloudwatch.DescribeAlarms": 0.00001,
}
_PRICE_PER_METRIC_REQUESTED = 0.00001  # GetMetricData: 0.01 USD per 1,000 metrics
_PRICE_PER_GB_SCANNED = 0.005  # Logs Insights


def default_config(max_attempts: int | None = None) -> Config:
    """The one botocore configuration every client uses.

    Parameters
    ----------
    max_attempts
        Total attempts per call, first try included (default 5).

    Returns
    -------
    botocore.config.Config

    Examples
    --------
    >>> default_config(3).retries
    {'mode': 'standard', 'total_max_attempts': 3}
    """
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts or DEFAULT_MAX_ATTEMPTS},
        user_agent_extra=f"evilent-nb/{__version__}",
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=20,
    )


class ApiUsage:
    """Counts the API calls made through one session and estimates their price.

    Every call counts once per request made by the code (a paginator's pages count one
    each); botocore's automatic retries of one request are not counted again.

    Examples
    --------
    >>> s = get_session(region="eu-central-1")     # doctest: +SKIP
    >>> usage(s).to_dict()                          # doctest: +SKIP
    {'calls': {}, 'estimated_cost_usd': 0.0}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.metrics_requested = 0
        self.bytes_scanned = 0.0
        self.estimated_cost_usd = 0.0

    # botocore event handlers -------------------------------------------------
    def _before_call(self, model: Any, params: dict, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            self.calls[name] += 1
            self.estimated_cost_usd += _PRICE_PER_REQUEST.get(name, 0.0)
            if name == "cloudwatch.GetMetricData":
                n = len(params.get("MetricDataQueries", []))
                self.metrics_requested += n
                self.estimated_cost_usd += n * _PRICE_PER_METRIC_REQUESTED

    def _after_call(self, model: Any, parsed: dict, **_: Any) -> None:
        if model.name != "GetQueryResults" or not isinstance(parsed, dict):
            return
        if parsed.get("status") not in {"Complete", "Failed", "Cancelled", "Timeout"}:
            return
        if parsed.get("nextToken"):  # a paged result repeats its statistics: count the last page
            return
        scanned = float((parsed.get("statistics") or {}).get("bytesScanned") or 0.0)
        with self._lock:
            self.bytes_scanned += scanned
            self.estimated_cost_usd += scanned / 1e9 * _PRICE_PER_GB_SCANNED

    def attach(self, session: boto3.Session) -> None:
        """Register the counters on ``session`` (before its clients are created)."""
        events = session.events
        # before-parameter-build reaches every handler; before-call stops at the first one
        # that answers (Stubber, evidence replay), which would hide those calls.
        events.register(
            "before-parameter-build", self._before_call, unique_id=f"evilent-usage-before-{id(self)}"
        )
        events.register("after-call", self._after_call, unique_id=f"evilent-usage-after-{id(self)}")

    @property
    def total_calls(self) -> int:
        """All calls, every operation."""
        return sum(self.calls.values())

    def to_dict(self) -> dict[str, Any]:
        """The ``api_usage`` block of ``summary.json``."""
        with self._lock:
            return {
                "calls": dict(sorted(self.calls.items())),
                "total_calls": sum(self.calls.values()),
                "metrics_requested": self.metrics_requested,
                "bytes_scanned": int(self.bytes_scanned),
                "estimated_cost_usd": round(self.estimated_cost_usd, 6),
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self.calls.clear()
            self.metrics_requested = 0
            self.bytes_scanned = 0.0
            self.estimated_cost_usd = 0.0


def usage(boto3_session: boto3.Session | None = None) -> ApiUsage:
    """The :class:`ApiUsage` counter of a session (attached on first use).

    Examples
    --------
    >>> usage(get_session(region="eu-central-1")).to_dict()["calls"]   # doctest: +SKIP
    {}
    """
    session = ensure_session(boto3_session)
    existing = getattr(session, "_evilent_usage", None)
    if existing is None:
        existing = ApiUsage()
        existing.attach(session)
        session._evilent_usage = existing  # type: ignore[attr-defined]
    return existing


def get_session(
    profile: str | None = None,
    region: str | None = None,
    *,
    max_attempts: int | None = None,
    require_credentials: bool = True,
) -> boto3.Session:
    """Create a boto3 session through the standard chain, checked and instrumented.

    Parameters
    ----------
    profile
        Named profile; default ``AWS_PROFILE`` or the default profile.
    region
        Region; default ``AWS_DEFAULT_REGION`` / the profile's region.
    max_attempts
        Total attempts per call for every client of this session.
    require_credentials
        Raise :class:`NoCredentialsError` when the chain finds none (replays need none).

    Returns
    -------
    boto3.Session
        With an :class:`ApiUsage` counter attached (see :func:`usage`).

    Raises
    ------
    NoRegionError, NoCredentialsError, AwsAccessError

    Examples
    --------
    >>> session = get_session(profile="evilent-readonly", region="eu-central-1")  # doctest: +SKIP
    >>> session.region_name                                                      # doctest: +SKIP
    'eu-central-1'
    """
    try:
        session = boto3.Session(profile_name=profile or None, region_name=region or None)
    except bex.ProfileNotFound as exc:
        raise NoCredentialsError(f"AWS profile {profile!r} not found: {_HOW_TO}") from exc
    except bex.BotoCoreError as exc:  # malformed config files and the like
        raise AwsAccessError(f"cannot create an AWS session ({exc}): {_HOW_TO}") from exc
    if not session.region_name:
        raise NoRegionError(f"no AWS region configured: set AWS_DEFAULT_REGION or pass -p region R; {_HOW_TO}")
    if require_credentials:
        try:
            creds = session.get_credentials()
        except bex.BotoCoreError as exc:
            raise NoCredentialsError(f"cannot load AWS credentials ({exc}): {_HOW_TO}") from exc
        if creds is None:
            raise NoCredentialsError(f"no AWS credentials found: {_HOW_TO}")
    session._evilent_config = default_config(max_attempts)  # type: ignore[attr-defined]
    usage(session)
    return session


_default_lock = threading.Lock()
_default_session: boto3.Session | None = None


def ensure_session(boto3_session: boto3.Session | None = None) -> boto3.Session:
    """Return ``boto3_session``, or a process-wide default session from the standard chain.

    Examples
    --------
    >>> ensure_session().region_name   # the standard chain   # doctest: +SKIP
    'eu-central-1'
    """
    global _default_session
    if boto3_session is not None:
        return boto3_session
    with _default_lock:
        if _default_session is None:
            _default_session = get_session()
        return _default_session


def client(service: str, boto3_session: boto3.Session | None = None) -> Any:
    """A botocore client for ``service`` with the project's configuration.

    Clients are cached per session. Cost Explorer always uses ``us-east-1``.

    Parameters
    ----------
    service
        boto3 service name: ``cloudwatch``, ``logs``, ``ce``, ``cloudformation`` ...
    boto3_session
        Session to use; default :func:`ensure_session`.

    Examples
    --------
    >>> client("ce").meta.endpoint_url                       # doctest: +SKIP
    'https://ce.us-east-1.amazonaws.com'
    """
    session = ensure_session(boto3_session)
    usage(session)  # counters must be registered before the client copies the events
    cache: dict[str, Any] | None = getattr(session, "_evilent_clients", None)
    if cache is None:
        cache = {}
        session._evilent_clients = cache  # type: ignore[attr-defined]
    if service not in cache:
        config = getattr(session, "_evilent_config", None) or default_config()
        region = _GLOBAL_REGIONS.get(service, session.region_name)
        if not region:
            raise NoRegionError(f"no AWS region configured: set AWS_DEFAULT_REGION or pass -p region R; {_HOW_TO}")
        cache[service] = session.client(service, region_name=region, config=config)
    return cache[service]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    if isinstance(exc, bex.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def translate_errors(source: str) -> Iterator[None]:
    """Turn botocore failures inside the block into evilent-nb errors.

    - no credentials / region, access denied, unreachable endpoint: :class:`AwsAccessError`
      subclasses (the report cannot go on);
    - anything else from AWS (throttling past the retries, a timeout, a service error):
      :class:`DataSourceError` naming ``source`` (the report can go on without it).

    Examples
    --------
    >>> with translate_errors("logs.FilterLogEvents"):        # doctest: +SKIP
    ...     client("logs").filter_log_events(logGroupName="/aws/lambda/x")
    """
    try:
        yield
    except (bex.NoCredentialsError, bex.PartialCredentialsError) as exc:
        raise NoCredentialsError(f"no AWS credentials found ({source}): {_HOW_TO}") from exc
    except (bex.TokenRetrievalError, bex.SSOError, bex.CredentialRetrievalError,
            bex.RefreshWithMFAUnsupportedError) as exc:
        # Credentials are resolved lazily: an expired SSO login surfaces at the first call.
        raise NoCredentialsError(
            f"cannot load AWS credentials ({source}): {exc}; refresh them (e.g. `aws sso login`)"
        ) from exc
    except bex.NoRegionError as exc:
        raise NoRegionError(f"no AWS region configured ({source}): {_HOW_TO}") from exc
    except (bex.EndpointConnectionError, bex.ConnectTimeoutError) as exc:
        raise EndpointUnreachableError(f"AWS endpoint unreachable ({source}): {exc}") from exc
    except bex.ClientError as exc:
        code = error_code(exc)
        msg = exc.response.get("Error", {}).get("Message") or str(exc)
        if code in _EXPIRED:
            raise NoCredentialsError(
                f"AWS credentials expired or the clock is off ({source}, {code}): refresh them"
                " (e.g. `aws sso login`) or sync the clock"
            ) from exc
        if code in _ACCESS_DENIED:
            raise AccessDeniedError(
                f"access denied by AWS for {source} ({code}): grant the actions of `evilent-nb iam-policy`"
            ) from exc
        raise DataSourceError(source, f"{code}: {msg}") from exc
    except (bex.ReadTimeoutError, bex.ConnectionClosedError) as exc:
        raise DataSourceError(source, f"timed out: {exc}") from exc
    except bex.BotoCoreError as exc:
        raise DataSourceError(source, str(exc)) from exc
