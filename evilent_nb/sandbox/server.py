"""The sandbox: a moto server on loopback, seeded with a scenario, plus a /health server.

moto's backends are process-global, so one process runs one sandbox at a time.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, ClassVar

from .scenario import Scenario
from .scenarios import DEFAULT_SCENARIO, get_scenario
from .seed import CREDENTIALS, SeedRecord, seed

__all__ = ["LOOPBACK", "HealthServer", "Sandbox", "serve"]

#: Everything the sandbox serves binds here, never 0.0.0.0.
LOOPBACK = "127.0.0.1"


class _HealthHandler(BaseHTTPRequestHandler):
    server: _HealthHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        status = self.server.statuses.get(parts[0]) if len(parts) == 2 and parts[1] == "health" else None
        if status is None:
            code, payload = 404, {"message": "Missing Authentication Token"}  # what API Gateway says
        elif 200 <= status < 300:
            code, payload = status, {"status": "ok", "service": parts[0]}
        else:
            code, payload = status, {"status": "unhealthy", "service": parts[0],
                                     "error": "database connection timeout"}  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # quiet: the sandbox prints nothing per request


class _HealthHTTPServer(ThreadingHTTPServer):
    statuses: dict[str, int]


class HealthServer:
    """Answers ``GET /<service>/health`` with each service's status code, on loopback."""

    def __init__(self, statuses: dict[str, int], port: int = 0) -> None:
        self._server = _HealthHTTPServer((LOOPBACK, port), _HealthHandler)
        self._server.statuses = dict(statuses)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="evilent-sandbox-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()  # joins request threads and frees the port
        self._thread.join()


class Sandbox:
    """A local AWS stand-in seeded with an EVILENT estate.

    A moto ``ThreadedMotoServer`` on 127.0.0.1 (a free port unless ``port`` is given),
    Lambda without Docker, the ``scenario`` seeded relative to ``now`` (default: the
    current time), and a health server on another free loopback port that the stacks'
    ``*ApiUrl`` outputs point at.

    Parameters
    ----------
    scenario
        A name from ``SCENARIOS`` (``"incident"``, ``"healthy"``) or a ``Scenario``.
    port
        The moto server's port; None picks a free one.
    now
        The reference time the seeded history is relative to (tz-aware). Logs must be
        within 14 days of the real time, so keep it near the clock.

    Examples
    --------
    >>> with Sandbox("healthy") as sb:                                  # doctest: +SKIP
    ...     os.environ.update(sb.env)
    ...     boto3.client("cloudformation").describe_stacks()
    """

    _active: ClassVar[Sandbox | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        scenario: str | Scenario = DEFAULT_SCENARIO,
        port: int | None = None,
        *,
        now: datetime | None = None,
    ) -> None:
        if now is not None and (now.tzinfo is None or now.utcoffset() is None):
            raise ValueError("Sandbox(now=...) needs a tz-aware datetime")
        self.scenario: Scenario = get_scenario(scenario)
        self.now: datetime = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self._requested_port = port
        self._moto: Any = None
        self._health: HealthServer | None = None
        self._werkzeug_level: int | None = None
        self.seeded: SeedRecord | None = None
        self.seed_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Start both servers and seed the scenario. Returns self."""
        from moto.server import ThreadedMotoServer

        with Sandbox._lock:
            if Sandbox._active is not None:
                raise RuntimeError("a Sandbox is already running in this process (moto's state is global)")
            Sandbox._active = self
        try:
            werkzeug = logging.getLogger("werkzeug")
            self._werkzeug_level = werkzeug.level
            werkzeug.setLevel(logging.ERROR)  # it logs every request otherwise
            self._moto = ThreadedMotoServer(
                ip_address=LOOPBACK, port=self._requested_port or 0, verbose=False
            )
            self._moto.start()
            self._health = HealthServer({s.name: s.health_status for s in self.scenario.services})
            self._health.start()
            started = time.perf_counter()
            self._moto_api("reset")
            self._moto_api("config", {"lambda": {"use_docker": False}})
            self.seeded = seed(
                self.scenario, endpoint_url=self.endpoint_url,
                health_base=self._health.base_url, now=self.now,
            )  # fmt: skip
            self.seed_seconds = time.perf_counter() - started
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers, free their ports and threads, and clear moto's state."""
        try:
            if self._moto is not None and self._moto._server is not None:
                try:
                    self._moto_api("reset")
                except OSError:
                    pass  # already gone: nothing to clear
                self._moto.stop()
                self._moto._server.server_close()  # ThreadedMotoServer.stop leaves it bound
            if self._health is not None:
                self._health.stop()
        finally:
            self._moto = None
            self._health = None
            if self._werkzeug_level is not None:
                logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
                self._werkzeug_level = None
            with Sandbox._lock:
                if Sandbox._active is self:
                    Sandbox._active = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what clients need -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The moto server's port."""
        if self._moto is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._moto.get_host_and_port()[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def health_url(self) -> str:
        """The health server's base URL; ``<health_url>/<service>/health`` answers."""
        if self._health is None:
            raise RuntimeError("the sandbox is not running")
        return self._health.base_url

    @property
    def env(self) -> dict[str, str]:
        """The environment that points boto3 (and so evilent-nb) at the sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.scenario.region,
        }

    def export_lines(self) -> list[str]:
        """``export NAME=value`` lines for a shell (or JupyterLab started from it)."""
        return [f"export {k}={shlex.quote(v)}" for k, v in self.env.items()]

    def summary(self) -> str:
        """A few lines describing the running estate and what the scenario planted."""
        sc = self.scenario
        lines = [
            f"scenario {sc.name}: {sc.description}",
            f"moto server  {self.endpoint_url}   health server {self.health_url}",
            f"region {sc.region}, reference time {self.now.isoformat().replace('+00:00', 'Z')}",
        ]
        for svc in sc.services:
            lines.append(
                f"  {svc.stack}: {svc.function} ({svc.runtime}), API {svc.api}, "
                f"{self.health_url}/{svc.name}/health -> {svc.health_status}"
            )
        lines.append(f"  RDS {sc.db.identifier} ({sc.db.engine}), bucket s3://{sc.backups.bucket}, "
                     f"SNS {sc.sns_topic}")  # fmt: skip
        if self.seeded is not None:
            events = sum(self.seeded.log_events.values())
            lines.append(f"  {sc.history_days} days of history: {self.seeded.metric_datums} metric datapoints, "
                         f"{events} log events, {sc.cost.days} days of Cost Explorer data")  # fmt: skip
        lines.append("planted:" if sc.planted else "planted: nothing")
        for p in sc.planted:
            lines.append(f"  {p.severity} {p.check:<20} {p.resource}")
        return "\n".join(lines)

    def _moto_api(self, action: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{action}", data=data, method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            response.read()


def serve(
    scenario: str | Scenario = DEFAULT_SCENARIO,
    port: int | None = None,
    *,
    out: IO[str] = sys.stdout,
    stop: threading.Event | None = None,
) -> None:
    """Run a sandbox until Ctrl-C: print the ``export`` lines and a summary, then block.

    ``stop``, when given and set, ends it as Ctrl-C would (for tests and embedding).

    Examples
    --------
    >>> serve("incident", 5000)                                         # doctest: +SKIP
    export AWS_ENDPOINT_URL=http://127.0.0.1:5000
    ...
    """
    with Sandbox(scenario, port) as sandbox:
        for line in sandbox.export_lines():
            print(line, file=out)
        print(file=out)
        print(sandbox.summary(), file=out)
        print(f"\nseeded in {sandbox.seed_seconds:.1f} s; serving until Ctrl-C", file=out, flush=True)
        stop = stop if stop is not None else threading.Event()
        try:
            while not stop.wait(0.5):  # short waits so Ctrl-C is seen promptly
                pass
        except KeyboardInterrupt:
            print("stopping the sandbox", file=out, flush=True)
