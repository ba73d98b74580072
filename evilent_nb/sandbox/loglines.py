"""Realistic Lambda log events for a scenario's services (pure: no AWS here).

Each logged invocation writes what the Node.js Lambda runtime writes: ``START``, tab-
separated ``<time>\\t<request id>\\t<LEVEL>\\t<message>`` lines, ``END`` and ``REPORT``.
Errors carry their stack trace in the same event, over several lines. Every failed
invocation is logged (so ERROR events per hour equal the Errors metric); successful ones
are sampled. A few lines carry secrets (``SECRETS``) that redaction must remove.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .scenario import (
    DAILY_SHAPE,
    HOUR,
    Scenario,
    ServicePlan,
    hour_buckets,
    hourly_load,
    round_half_up,
)

__all__ = ["DB_HOST", "SECRETS", "LoggedEvent", "epoch_ms", "service_log_events", "stale_stream_events"]

DB_HOST = "evilent-user-service-db.c9xk2m1qz3rt.eu-central-1.rds.amazonaws.com"

_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ1LTQyMTciLCJlbWFpbCI6Im1hcmlhLmdhcmNpYUBleGFtcGxlLmNvbSIsImV4cCI6MTc5NTg0MDAwMH0."
    "kq3V9Jx0H7bR2n5mWc8tLpYz4sDfGhQeUoIaNvBxC1E"
)
_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
_PG_PASSWORD = "Sup3rS3cretPw"
_MONGO_PASSWORD = "M0ngoPa55w0rd"
_EMAIL = "maria.garcia@example.com"

#: The sensitive substrings planted in the logs: none may appear in a report.
SECRETS: tuple[str, ...] = (_EMAIL, _JWT, _ACCESS_KEY, _SECRET_KEY, _PG_PASSWORD, _MONGO_PASSWORD)

# (level, message) lines written once a day, in the given UTC hour, by the first logged call.
_SECRET_LINES: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {
    "user": (9, (
        ("INFO", f"password reset requested for {_EMAIL}"),
        ("WARN", f"db pool reconnect url=postgres://evilent_app:{_PG_PASSWORD}@{DB_HOST}:5432/evilent_user_service"),
        ("INFO", f"forwarding to orders API with Authorization: Bearer {_JWT}"),
        ("INFO", f"s3 client from env AWS_ACCESS_KEY_ID={_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={_SECRET_KEY}"),
    )),
    "product": (6, (
        ("INFO", f"catalog cache connected mongodb://product_svc:{_MONGO_PASSWORD}@cluster0.mongo.internal:27017/products"),
        ("INFO", f"low-stock report mailed to {_EMAIL}"),
    )),
}  # fmt: skip

_ROUTES = {
    "user": ("GET /users/{id} 200", "POST /auth/login 200", "PUT /users/{id}/profile 200",
             "GET /users/me 200", "POST /auth/refresh 200"),
    "product": ("GET /products?category=shoes 200", "GET /products/{id} 200",
                "GET /products?q=jacket&page=2 200", "POST /products 201", "PATCH /products/{id}/stock 200"),
}  # fmt: skip

_WARNINGS = (
    "slow query took {ms} ms: SELECT id, email, created_at FROM users WHERE id = $1",
    "retrying request to inventory (attempt 2) after {ms} ms",
    "cache miss ratio above 0.4 over the last minute",
)

_STACK = (
    "    at {fn} (/var/task/src/handlers/{svc}.js:{line}:{col})\n"
    "    at Runtime.handler (/var/task/src/index.js:27:18)\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
)
_PG_STACK = (
    "    at Client._handleErrorWhileConnecting (/var/task/node_modules/pg/lib/client.js:179:10)\n"
    "    at Timeout._onTimeout (/var/task/node_modules/pg/lib/client.js:126:12)\n"
    "    at listOnTimeout (node:internal/timers:573:17)\n"
    "    at process.processTimers (node:internal/timers:514:7)"
)


@dataclass(frozen=True)
class LoggedEvent:
    """One log event: its stream, epoch-millisecond timestamp and message."""

    stream: str
    timestamp: int
    message: str


def epoch_ms(when: datetime) -> int:
    return int(round(when.timestamp() * 1000))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _stream_name(scenario: Scenario, service: ServicePlan, opened: datetime, tag: str) -> str:
    digest = hashlib.md5(f"{scenario.seed}:{service.name}:{opened.isoformat()}:{tag}".encode()).hexdigest()  # noqa: S324
    return f"{opened:%Y/%m/%d}/[$LATEST]{digest}"


class _Writer:
    """Collects one service's events, opening a new stream (a new container) every 4 h
    and at the deploy, with an ``INIT_START`` line first in each."""

    def __init__(self, scenario: Scenario, service: ServicePlan, deploy_at: datetime | None) -> None:
        self.scenario = scenario
        self.service = service
        self.deploy_at = deploy_at
        self.events: list[LoggedEvent] = []
        self._opened: set[str] = set()

    def stream_for(self, when: datetime) -> str:
        block = when.replace(hour=when.hour - when.hour % 4, minute=0, second=0, microsecond=0)
        tag = "v1"
        if self.deploy_at is not None and when >= self.deploy_at:
            block, tag = max(block, self.deploy_at), "v2"
        name = _stream_name(self.scenario, self.service, block, tag)
        if name not in self._opened:
            self._opened.add(name)
            runtime = self.service.runtime.replace(".x", "")
            self.add(name, when - timedelta(milliseconds=310),
                     f"INIT_START Runtime Version: {runtime.replace('nodejs', 'nodejs:')}.v32\t"
                     f"Runtime Version ARN: arn:aws:lambda:{self.scenario.region}::runtime:"
                     f"{hashlib.sha256(runtime.encode()).hexdigest()}")
        return name

    def add(self, stream: str, when: datetime, message: str) -> None:
        self.events.append(LoggedEvent(stream, epoch_ms(when), message))


def _request_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _invocation(
    writer: _Writer,
    rng: random.Random,
    start: datetime,
    duration_ms: float,
    lines: list[tuple[str, str]],
) -> None:
    stream = writer.stream_for(start)
    rid = _request_id(rng)
    writer.add(stream, start, f"START RequestId: {rid} Version: $LATEST")
    step = duration_ms / (len(lines) + 1)
    for i, (level, text) in enumerate(lines, start=1):
        at = start + timedelta(milliseconds=step * i)
        writer.add(stream, at, f"{_iso(at)}\t{rid}\t{level}\t{text}")
    end = start + timedelta(milliseconds=duration_ms)
    writer.add(stream, end, f"END RequestId: {rid}")
    memory = 70 + rng.randint(0, 40)
    writer.add(
        stream,
        end,
        f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
        f"{math.ceil(duration_ms)} ms\tMemory Size: 256 MB\tMax Memory Used: {memory} MB\t",
    )


def _spread(rng: random.Random, start: datetime, end: datetime, count: int) -> list[datetime]:
    """``count`` times spread over [start, end), evenly with jitter, in order."""
    if count <= 0 or end <= start:
        return []
    slot = (end - start) / count
    # Keep 4 s clear at the end so the whole invocation stays inside the hour.
    room = max(slot.total_seconds() - 4.0, 0.0)
    return [start + slot * i + timedelta(seconds=rng.uniform(0, room)) for i in range(count)]


def service_log_events(
    scenario: Scenario, service: ServicePlan, *, now: datetime, deploy_at: datetime | None
) -> list[LoggedEvent]:
    """Every log event of ``service`` over the scenario's history, in time order.

    Per hour bucket: ``logged_per_hour * DAILY_SHAPE[hour]`` successful invocations (one in
    eight with a WARN), every baseline error (one of the service's ``error_messages``) and,
    inside the spike, every spike error (a WARN about the DB, then the ``signature`` with
    node-postgres's stack trace).
    """
    rng = random.Random(f"{scenario.seed}:{service.name}:logs")
    writer = _Writer(scenario, service, deploy_at)
    spike = scenario.spike if scenario.spike and scenario.spike.service == service.name else None
    spike_start = now - spike.starts_ago if spike else None
    secret_hour, secret_lines = _SECRET_LINES.get(service.name, (-1, ()))
    routes = _ROUTES.get(service.name, ("GET / 200",))

    for start in hour_buckets(now, scenario.history_days):
        load = hourly_load(scenario, service, start, now)
        if not load.span:
            continue
        end = start + load.span
        frac = load.span / HOUR
        n_ok = round_half_up(service.logged_per_hour * DAILY_SHAPE[start.hour] * frac)
        calls: list[tuple[datetime, str]] = [(t, "ok") for t in _spread(rng, start, end, n_ok)]
        calls += [(t, "error") for t in _spread(rng, start, end, load.errors - load.spike_errors)]
        if load.spike_errors and spike_start is not None:
            calls += [(t, "spike") for t in _spread(rng, max(start, spike_start), end, load.spike_errors)]
        calls.sort(key=lambda c: c[0])

        first_ok = True
        for when, kind in calls:
            route = rng.choice(routes).replace("{id}", f"{service.name[0]}-{rng.randint(1000, 9999)}")
            if kind == "ok":
                duration = load.base_duration_ms * rng.uniform(0.6, 1.5)
                lines = [("INFO", route)]
                if rng.random() < 0.125:
                    lines.append(("WARN", rng.choice(_WARNINGS).format(ms=rng.randint(800, 1900))))
                if first_ok and start.hour == secret_hour:
                    lines.extend(secret_lines)
                first_ok = False
            elif kind == "error":
                duration = load.base_duration_ms * rng.uniform(0.8, 2.0)
                message = rng.choice(service.error_messages or ("Error: internal error",))
                trace = _STACK.format(fn=f"handle{service.name.title()}", svc=service.name,
                                      line=rng.randint(20, 240), col=rng.randint(5, 40))
                lines = [("INFO", route), ("ERROR", f"{message}\n{trace}")]
            else:
                assert spike is not None
                duration = spike.error_duration_ms + rng.uniform(2, 40)
                lines = [
                    ("INFO", route),
                    ("WARN", f"pg pool: connecting to {DB_HOST}:5432 timed out after "
                             f"{spike.error_duration_ms:.0f} ms (attempt 1)"),
                    ("ERROR", f"{spike.signature}\n{_PG_STACK}"),
                ]
            _invocation(writer, rng, when, duration, lines)

    writer.events.sort(key=lambda e: e.timestamp)  # stable: START stays before its lines
    return [e for e in writer.events if e.timestamp <= epoch_ms(now)]


def stale_stream_events(
    scenario: Scenario, service: ServicePlan, *, now: datetime, days_old: int, count: int, per_stream: int
) -> dict[str, list[LoggedEvent]]:
    """``count`` old streams; stream ``i``'s newest event is ``days_old + i`` days before now."""
    rng = random.Random(f"{scenario.seed}:{service.name}:stale")
    routes = _ROUTES.get(service.name, ("GET / 200",))
    out: dict[str, list[LoggedEvent]] = {}
    for i in range(count):
        last = now - timedelta(days=days_old + i)
        opened = last - timedelta(hours=3)
        stream = _stream_name(scenario, service, opened, f"stale{i}")
        times = [*_spread(rng, opened, last, max(per_stream - 1, 0)), last]
        out[stream] = [
            LoggedEvent(stream, epoch_ms(t), f"{_iso(t)}\t{_request_id(rng)}\tINFO\t{rng.choice(routes)}")
            for t in times
        ]
    return out
