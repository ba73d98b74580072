"""What a sandbox scenario is: plain data, plus the traffic arithmetic seeding uses.

A scenario declares the estate (services, costs, policies, ...), what is wrong with it
(a deploy, an error spike, stale streams, ...) and, in ``planted``, the findings a report
should raise against it under the default rulebook. Every number the seeding writes comes
from the declared parameters through the small pure functions here, so a test can compute
exactly what a given hour or day must hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

__all__ = [
    "DAILY_SHAPE",
    "HOUR",
    "WEEKDAY_COST_FACTOR",
    "BackupPlan",
    "CostAnomaly",
    "CostPlan",
    "DbPlan",
    "Deploy",
    "ErrorSpike",
    "HourLoad",
    "Planted",
    "PolicyPlan",
    "Scenario",
    "ServicePlan",
    "StaleStreams",
    "daily_cost",
    "floor_hour",
    "hour_buckets",
    "hourly_load",
    "round_half_up",
]

HOUR = timedelta(hours=1)

#: Share of the daily peak traffic in each UTC hour (0-23): a European shop, busy in the evening.
DAILY_SHAPE: tuple[float, ...] = (
    0.35, 0.30, 0.27, 0.25, 0.25, 0.28, 0.35, 0.48,
    0.62, 0.72, 0.78, 0.82, 0.86, 0.84, 0.80, 0.80,
    0.84, 0.92, 1.00, 0.98, 0.90, 0.76, 0.58, 0.44,
)  # fmt: skip

#: Multiplier of each service's daily cost by weekday (Monday first): quieter weekends.
WEEKDAY_COST_FACTOR: tuple[float, ...] = (1.04, 1.08, 1.06, 1.05, 1.00, 0.82, 0.78)


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves up (Python's ``round`` rounds halves to even)."""
    return int(math.floor(value + 0.5))


def floor_hour(when: datetime) -> datetime:
    """The start of the hour holding ``when``."""
    return when.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Planted:
    """A finding a scenario plants: what a report run against it must raise.

    ``check`` and ``severity`` follow DESIGN.md's table; ``resource`` is the exact name
    (function, API, log group, policy, AWS service, ...); ``service`` is the owning
    service's short name, or None for account-wide resources.
    """

    check: str
    resource: str
    severity: str
    service: str | None = None


@dataclass(frozen=True)
class ServicePlan:
    """One EVILENT service: its stack's resources and its traffic.

    Traffic per hour is ``peak_invocations * DAILY_SHAPE[hour]``; ``error_ratio`` of the
    invocations fail; each one takes ``duration_ms * (0.8 + 0.4 * shape)`` on average;
    the API sees ``client_error_ratio`` of extra 4xx requests that never reach Lambda, and
    every Lambda error surfaces as a 5xx. ``logged_per_hour`` successful invocations per
    peak hour are written to the log group (scaled by the shape like the traffic); every
    failed invocation is logged, so ERROR events per hour equal the Errors metric.
    """

    name: str
    stack: str
    function: str
    api: str
    role: str
    runtime: str = "nodejs20.x"
    code_version: str = "1.8.0"
    peak_invocations: int = 3000
    error_ratio: float = 0.001
    duration_ms: float = 120.0
    client_error_ratio: float = 0.02
    latency_overhead_ms: float = 18.0
    health_status: int = 200
    log_retention_days: int | None = 30
    runbook_alarms: bool = True
    logged_per_hour: int = 50
    created_days_ago: int = 90
    function_modified_days_ago: int = 41
    error_messages: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``UserServiceStack`` -> ``UserService`` (alarm names use it)."""
        return self.stack[: -len("Stack")] if self.stack.endswith("Stack") else self.stack

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def url_output(self) -> str:
        """The stack output holding the API's URL, e.g. ``UserServiceApiUrl``."""
        return f"{self.label}ApiUrl"

    @property
    def alarm_names(self) -> tuple[str, str]:
        return (f"{self.label}-HighErrorRate", f"{self.label}-HighLatency")


@dataclass(frozen=True)
class Deploy:
    """A CloudFormation update of ``stack`` (a real UpdateStack), ``ago`` before now."""

    stack: str
    ago: timedelta
    code_version: str
    took: timedelta = timedelta(seconds=94)


@dataclass(frozen=True)
class ErrorSpike:
    """From ``starts_ago`` before now until now, ``error_ratio`` of ``service``'s
    invocations fail with ``signature``, each after ``error_duration_ms``; the RDS
    instance's connections sit at ``db_connections`` meanwhile."""

    service: str
    starts_ago: timedelta
    error_ratio: float
    signature: str
    error_duration_ms: float = 3000.0
    db_connections: float = 87.0


@dataclass(frozen=True)
class CostAnomaly:
    """``service`` cost ``amount_usd`` on the day ``days_ago`` days before today."""

    service: str
    days_ago: int
    amount_usd: float


@dataclass(frozen=True)
class CostPlan:
    """Daily UnblendedCost by SERVICE for ``days`` days ending today (today and yesterday
    are ``Estimated``; today's row holds only the part of the day already gone)."""

    daily_usd: Mapping[str, float]
    days: int = 90
    anomaly: CostAnomaly | None = None


@dataclass(frozen=True)
class PolicyPlan:
    """A customer-managed IAM policy and the roles it is attached to (maybe none)."""

    name: str
    attached_to: tuple[str, ...]
    actions: tuple[str, ...]
    resource: str = "*"


@dataclass(frozen=True)
class StaleStreams:
    """``count`` old log streams in ``log_group``, the newest event ``days_old`` days ago."""

    log_group: str
    count: int = 3
    days_old: int = 45
    events_per_stream: int = 40


@dataclass(frozen=True)
class DbPlan:
    """The RDS instance and its daily manual snapshots (the newest ``newest_snapshot_age`` old)."""

    identifier: str = "evilent-user-service-db"
    engine: str = "postgres"
    instance_class: str = "db.t3.micro"
    allocated_gb: int = 20
    db_name: str = "evilent_user_service"
    snapshot_days: int = 7
    newest_snapshot_age: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class BackupPlan:
    """Dated dumps under each prefix of ``bucket``, one a day for ``days`` days."""

    bucket: str = "evilent-backups"
    dumps: Mapping[str, str] = field(
        default_factory=lambda: {
            "user-service/": "evilent_user_service-{date}.sql.gz",
            "product-service/": "evilent_product-{date}.archive.gz",
        }
    )
    days: int = 7


@dataclass(frozen=True)
class Scenario:
    """A whole sandbox estate and what is wrong with it."""

    name: str
    description: str
    services: tuple[ServicePlan, ...]
    cost: CostPlan
    policies: tuple[PolicyPlan, ...]
    planted: tuple[Planted, ...]
    deploy: Deploy | None = None
    spike: ErrorSpike | None = None
    stale_streams: tuple[StaleStreams, ...] = ()
    db: DbPlan = field(default_factory=DbPlan)
    backups: BackupPlan = field(default_factory=BackupPlan)
    alarm_states: Mapping[str, str] = field(default_factory=dict)
    sns_topic: str = "alerts-topic"
    region: str = "eu-central-1"
    history_days: int = 7
    seed: int = 20261128

    def service(self, name: str) -> ServicePlan:
        """The service called ``name`` (short name or stack name)."""
        for svc in self.services:
            if name in (svc.name, svc.stack):
                return svc
        raise KeyError(name)

    def planted_for(self, check: str) -> list[Planted]:
        return [p for p in self.planted if p.check == check]


@dataclass(frozen=True)
class HourLoad:
    """One service's traffic in one hour bucket (the current hour is partial)."""

    start: datetime
    span: timedelta
    invocations: int
    errors: int
    spike_invocations: int
    spike_errors: int
    duration_sum_ms: float
    duration_avg_ms: float
    base_duration_ms: float
    requests: int
    client_errors: int
    server_errors: int
    spike_share: float


def hour_buckets(now: datetime, history_days: int) -> list[datetime]:
    """Hour starts from ``history_days`` before the current hour up to the current one."""
    current = floor_hour(now)
    count = history_days * 24
    return [current - (count - i) * HOUR for i in range(count + 1)]


def _spike_window(scenario: Scenario, now: datetime) -> tuple[datetime, datetime] | None:
    if scenario.spike is None:
        return None
    return now - scenario.spike.starts_ago, now


def hourly_load(
    scenario: Scenario, service: ServicePlan, start: datetime, now: datetime
) -> HourLoad:
    """The traffic of ``service`` in the hour from ``start`` (cut at ``now``)."""
    end = min(start + HOUR, now)
    span = max(end - start, timedelta(0))
    frac = span / HOUR
    shape = DAILY_SHAPE[start.hour]
    invocations = round_half_up(service.peak_invocations * shape * frac)

    share = 0.0
    window = _spike_window(scenario, now)
    spike = scenario.spike
    if window is not None and spike is not None and spike.service == service.name and span:
        overlap = min(end, window[1]) - max(start, window[0])
        share = max(overlap / span, 0.0)
    spike_inv = round_half_up(invocations * share)
    base_inv = invocations - spike_inv
    base_errors = round_half_up(base_inv * service.error_ratio)
    spike_errors = round_half_up(spike_inv * spike.error_ratio) if spike and spike_inv else 0
    errors = base_errors + spike_errors

    base_ms = service.duration_ms * (0.8 + 0.4 * shape)
    timeout_ms = spike.error_duration_ms if spike else 0.0
    duration_sum = (invocations - spike_errors) * base_ms + spike_errors * timeout_ms
    duration_avg = duration_sum / invocations if invocations else 0.0

    client_errors = round_half_up(invocations * service.client_error_ratio)
    return HourLoad(
        start=start,
        span=span,
        invocations=invocations,
        errors=errors,
        spike_invocations=spike_inv,
        spike_errors=spike_errors,
        duration_sum_ms=duration_sum,
        duration_avg_ms=duration_avg,
        base_duration_ms=base_ms,
        requests=invocations + client_errors,
        client_errors=client_errors,
        server_errors=errors,
        spike_share=share,
    )


def daily_cost(plan: CostPlan, service: str, day: date, *, today: date, day_fraction: float) -> float:
    """USD for ``service`` on ``day``: base x weekday factor, the anomaly's amount on its
    day, and only ``day_fraction`` of it for today (the day is not over)."""
    anomaly = plan.anomaly
    if anomaly is not None and anomaly.service == service and day == today - timedelta(
        days=anomaly.days_ago
    ):
        amount = anomaly.amount_usd
    else:
        amount = plan.daily_usd[service] * WEEKDAY_COST_FACTOR[day.weekday()]
    if day == today:
        amount *= day_fraction
    return round(amount, 10)
