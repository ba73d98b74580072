"""Helpers shared by the benchmark scripts: a fake offline AWS environment and markdown tables."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: Variables that could point boto3 at a real account; the benchmarks never use them.
_REAL_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                  "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")


def offline_env(region: str = "eu-central-1") -> None:
    """Fake credentials and a region, so that only moto (in-process or on loopback) answers."""
    for name in _REAL_AWS_VARS:
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.setdefault("MPLBACKEND", "agg")


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def machine() -> str:
    """One line naming the machine and the versions that matter."""
    import boto3
    import moto
    import pandas

    return (f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
            f"Python {sys.version.split()[0]}, moto {moto.__version__}, boto3 {boto3.__version__}, "
            f"pandas {pandas.__version__}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 0.01:
            return f"{value:.5f}"
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(r[i], int | float) for r in rows) if rows else False
               for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(list(headers)), rule] + [line(r) for r in cells])
