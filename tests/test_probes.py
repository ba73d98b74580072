"""Health probes against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from evilent_nb.frames import SCHEMAS
from evilent_nb.probes import probe

SLOW_S = 1.0
TIMEOUT_S = 0.2


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/slow"):
            time.sleep(SLOW_S)
        if self.path in ("/up/health", "/slow/health"):
            code, body = 200, b'{"status":"ok"}'
        elif self.path == "/down/health":
            code, body = 503, b'{"status":"down"}'
        else:
            code, body = 404, b"not found"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


def test_rows_are_exact_and_in_order(server, refused_url):
    urls = [
        f"{server}/up",
        f"{server}/down/",
        f"{server}/slow",
        refused_url,
        None,
        f"{server}/up/health",  # already ends with the path: not doubled
    ]
    started = time.perf_counter()
    frame = probe(urls, timeout_s=TIMEOUT_S)
    elapsed = time.perf_counter() - started
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMAS["probes"]
    assert frame.url.tolist() == [
        f"{server}/up/health",
        f"{server}/down/health",
        f"{server}/slow/health",
        f"{refused_url}/health",
        pd.NA,
        f"{server}/up/health",
    ]
    assert frame.status_code.tolist() == [200, 503, pd.NA, pd.NA, pd.NA, 200]
    assert frame.ok.tolist() == [True, False, False, False, False, True]
    assert frame.error.tolist() == [
        pd.NA,
        "HTTP 503 Service Unavailable",
        f"timeout after {TIMEOUT_S:g} s",
        "connection refused",
        "no health URL",
        pd.NA,
    ]
    latency = frame.latency_ms
    assert latency[[0, 1, 5]].between(0, 1000 * SLOW_S).all()
    assert latency[[2, 3, 4]].isna().all()
    # concurrent: the slow probe's timeout does not add up with the others
    assert elapsed < SLOW_S


def test_mapping_adds_a_name_column(server):
    frame = probe({"user": f"{server}/up", "product": f"{server}/down", "order": None}, timeout_s=2)
    assert frame.columns.tolist() == [*SCHEMAS["probes"], "name"]
    assert frame.name.tolist() == ["user", "product", "order"]
    assert frame.ok.tolist() == [True, False, False]
    assert frame.status_code.tolist() == [200, 503, pd.NA]


def test_path_none_probes_url_as_is(server):
    frame = probe([f"{server}/up/health", f"{server}/up"], path=None, timeout_s=2)
    assert frame.status_code.tolist() == [200, 404]
    assert frame.error.tolist() == [pd.NA, "HTTP 404 Not Found"]


def test_dns_failure_and_bad_urls_are_rows():
    frame = probe(["http://evilent-nb-no-such-host.invalid", "file:///etc/passwd", "not a url"], timeout_s=2)
    assert frame.ok.tolist() == [False, False, False]
    assert frame.status_code.isna().all()
    assert frame.error[0].startswith("DNS lookup failed")
    assert frame.error[1] == "invalid URL: only http and https are probed"
    assert frame.error[2] == "invalid URL: only http and https are probed"


def test_no_urls_gives_typed_empty_frame():
    frame = probe([])
    assert frame.empty
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMAS["probes"]
