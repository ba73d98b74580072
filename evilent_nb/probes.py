"""HTTP health probes: ``curl $URL/health``, concurrently, as a frame.

Every probe becomes a row, whatever happens: a 2xx answer, another status, a timeout, a
refused connection, a DNS failure or a missing URL. Nothing here raises for a failed
probe, because a service that does not answer is the finding, not an error.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from . import __version__
from .frames import typed_frame

__all__ = ["probe"]

NO_URL = "no health URL"
_BODY_LIMIT = 64 * 1024  # read (and drop) at most this much: the status is what counts


def _target(url: str, path: str | None) -> str:
    if not path:
        return url
    base = url.rstrip("/")
    return base if base.endswith(path) else base + path


def _reason(exc: BaseException, timeout_s: float) -> str:
    """One short line saying why a probe got no HTTP answer."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timeout after {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionError | OSError):
        return f"connection failed: {exc.strerror or exc}"
    if isinstance(exc, ValueError):
        return f"invalid URL: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _one(url: str | None, path: str | None, timeout_s: float) -> dict[str, Any]:
    if not url:
        return {"url": None, "status_code": None, "ok": False, "latency_ms": None, "error": NO_URL}
    target = _target(url, path)
    if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
        # urllib would also open file:// and ftp:// URLs; a health probe must not
        return {
            "url": target,
            "status_code": None,
            "ok": False,
            "latency_ms": None,
            "error": "invalid URL: only http and https are probed",
        }
    request = urllib.request.Request(
        target, method="GET", headers={"User-Agent": f"evilent-nb/{__version__} health-probe"}
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(_BODY_LIMIT)
            status = int(response.status)
        elapsed = (time.perf_counter() - started) * 1000.0
        ok = 200 <= status < 300
        return {
            "url": target,
            "status_code": status,
            "ok": ok,
            "latency_ms": elapsed,
            "error": None if ok else f"HTTP {status}",
        }
    except urllib.error.HTTPError as exc:  # a non-2xx answer is still an answer
        elapsed = (time.perf_counter() - started) * 1000.0
        with_reason = f"HTTP {exc.code} {exc.reason}".strip() if exc.reason else f"HTTP {exc.code}"
        return {
            "url": target,
            "status_code": exc.code,
            "ok": False,
            "latency_ms": elapsed,
            "error": with_reason,
        }
    except Exception as exc:  # every failure is a row, by contract
        return {
            "url": target,
            "status_code": None,
            "ok": False,
            "latency_ms": None,
            "error": _reason(exc, timeout_s),
        }


def probe(
    urls: Iterable[str | None] | Mapping[str, str | None],
    *,
    path: str | None = "/health",
    timeout_s: float = 5.0,
    max_workers: int = 8,
) -> pd.DataFrame:
    """GET each URL (plus ``path``) concurrently and tabulate the answers.

    Parameters
    ----------
    urls
        URLs, or a mapping ``name -> URL`` (then a ``name`` column is added after the
        schema's columns). A None URL gives a row with error ``"no health URL"``.
    path
        Appended to each URL unless the URL already ends with it (``/prod`` and
        ``/prod/health`` both probe ``/prod/health``). None or ``""`` probes the URL as is.
    timeout_s
        Per-request timeout (connect and each read), in seconds.
    max_workers
        Probes in flight at once.

    Returns
    -------
    pandas.DataFrame
        ``url, status_code, ok, latency_ms, error`` (``[, name]``), one row per input, in
        input order. ``ok`` is True for 2xx only. ``status_code`` is <NA> when no HTTP
        answer came; ``latency_ms`` is the time to the answer (NaN without one);
        ``error`` says what went wrong (``HTTP 503 Service Unavailable``, ``timeout after
        5 s``, ``connection refused``, ``DNS lookup failed: ...``), <NA> when ok.
        Redirects are followed; the final status counts.

    Examples
    --------
    >>> row = probe([None]).iloc[0]
    >>> bool(row.ok), row.error
    (False, 'no health URL')
    >>> probe({"user": "https://abc.execute-api.eu-central-1.amazonaws.com/prod"})  # doctest: +SKIP
    """
    names: list[str] | None = None
    if isinstance(urls, Mapping):
        names = [str(k) for k in urls]
        targets = [urls[k] for k in urls]
    else:
        targets = list(urls)
    if targets:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(targets)))) as pool:
            rows = list(pool.map(lambda u: _one(u, path, timeout_s), targets))
    else:
        rows = []
    if names is None:
        return typed_frame(rows, "probes")
    for row, name in zip(rows, names, strict=True):
        row["name"] = name
    return typed_frame(rows, "probes", extra={"name": "string"})
