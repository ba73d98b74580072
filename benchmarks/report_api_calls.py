"""API calls, price and wall time of each report against the sandbox.

Part 1 runs each report's gatherer in this process (no kernel) against
``Sandbox("incident")``, each through a fresh ``ReportContext`` (so estate discovery is
counted in every report, as in a real run), and prints per report: wall time, total API
calls, Cost Explorer requests (the project's rule: 1 for cost, 0 elsewhere),
GetMetricData calls (1 for each report that reads metrics), metrics requested and the
estimated price from ``evilent_nb.aws.usage``; then the calls per operation.

Part 2 runs each report end to end with ``run_report`` (parameters, pre-flight, papermill
kernel, HTML, summary, evidence) one after the other, and reads the calls from the
summary's ``api_usage``; the calls the runner's pre-flight makes in this process before the
kernel starts are counted separately (they are not in the summary). Part 3 times ``evilent-nb demo`` (its own sandbox, four reports two
at a time) in a subprocess. ``--quick`` runs part 1 only.

Everything stays on loopback (moto server and health server on 127.0.0.1).

Run: ``.venv/bin/python benchmarks/report_api_calls.py [--quick]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import machine, offline_env, table, timer

REPORTS = ("health", "cost", "incident", "maintenance")
#: The rule: (Cost Explorer requests, GetMetricData calls) each report may make.
EXPECTED = {"health": (0, 1), "cost": (1, 0), "incident": (0, 1), "maintenance": (0, 0)}
CE = "ce.GetCostAndUsage"
GMD = "cloudwatch.GetMetricData"


def _check(report: str, calls: dict[str, int]) -> str:
    want_ce, want_gmd = EXPECTED[report]
    ce = sum(v for k, v in calls.items() if k.startswith("ce."))
    ok = ce == want_ce and calls.get(GMD, 0) == want_gmd
    return "ok" if ok else f"EXPECTED ce={want_ce} gmd={want_gmd}"


def main(quick: bool) -> None:
    offline_env()
    from evilent_nb import report as report_mod
    from evilent_nb import reports
    from evilent_nb.aws import usage
    from evilent_nb.report import ReportContext, run_report
    from evilent_nb.sandbox import Sandbox

    summary_rows, per_op, e2e_rows = [], {}, []
    sb = Sandbox("incident")
    with timer() as t_sandbox:
        sb.start()
    env = sb.env
    try:
        os.environ.update(env)
        seed_s = sb.seed_seconds or 0.0
        spike = sb.scenario.spike
        service = spike.service if spike is not None else sb.scenario.services[0].name
        gatherers = {
            "health": lambda c: reports.gather_health(c, window="24h"),
            "cost": lambda c: reports.gather_cost(c, window="35d"),
            "incident": lambda c: reports.gather_incident(c, service=service),
            "maintenance": lambda c: reports.gather_maintenance(c, apply=False),
        }
        for name in REPORTS:
            ctx = ReportContext.open(name)
            with timer() as t:
                data = gatherers[name](ctx)
            u = ctx.usage
            calls = u["calls"]
            per_op[name] = calls
            summary_rows.append([
                name, t[0], u["total_calls"], sum(v for k, v in calls.items() if k.startswith("ce.")),
                calls.get(GMD, 0), u["metrics_requested"], u["estimated_cost_usd"],
                len(data.findings), ctx.status, _check(name, calls),
            ])

        if not quick:
            # The runner's pre-flight (in this process, before the kernel) makes calls of its
            # own: watch the sessions it creates to count them.
            parent_sessions: list = []
            real_get_session = report_mod.get_session

            def watched_get_session(*args, **kwargs):
                session = real_get_session(*args, **kwargs)
                parent_sessions.append(session)
                return session

            report_mod.get_session = watched_get_session
            try:
                with tempfile.TemporaryDirectory(prefix="evilent-bench-") as out:
                    for name in REPORTS:
                        params = {"service": service} if name == "incident" else {}
                        parent_sessions.clear()
                        with timer() as t:
                            res = run_report(name, params, output_dir=out, progress_bar=False)
                        u = res.summary["api_usage"]
                        parent = Counter()
                        for session in parent_sessions:
                            parent.update(usage(session).calls)
                        size = Path(res.paths["html"]).stat().st_size
                        e2e_rows.append([name, t[0], u["total_calls"], u["calls"].get(CE, 0),
                                         u["calls"].get(GMD, 0), u["estimated_cost_usd"],
                                         ", ".join(f"{k} {v}" for k, v in sorted(parent.items())) or "-",
                                         res.status, size // 1024, _check(name, u["calls"])])
            finally:
                report_mod.get_session = real_get_session
    finally:
        sb.stop()
        for key in env:
            os.environ.pop(key, None)
        offline_env()

    print(f"## Report API calls ({machine()})\n")
    print(f"Sandbox \"incident\": start {t_sandbox[0]:.1f} s, of which seeding {seed_s:.1f} s.\n")
    print("### Gatherers in-process (fresh ReportContext each: discovery included)\n")
    print(table(["report", "wall s", "API calls", "CE requests", "GetMetricData calls",
                 "metrics requested", "est. USD", "findings", "status", "rule"], summary_rows))
    ops = sorted({op for calls in per_op.values() for op in calls})
    print("\n### Calls per operation (gatherers)\n")
    print(table(["operation", *REPORTS],
                [[op, *(per_op[r].get(op, 0) for r in REPORTS)] for op in ops]
                + [["total", *(sum(per_op[r].values()) for r in REPORTS)]]))
    if quick:
        return
    print("\n### End to end: run_report (pre-flight, kernel, HTML, summary, evidence), one after another\n")
    print(table(["report", "wall s", "API calls (summary)", "CE requests", "GetMetricData calls",
                 "est. USD", "of which pre-flight (parent process)", "status", "HTML KiB", "rule"], e2e_rows))

    cli = Path(sys.executable).with_name("evilent-nb")
    with tempfile.TemporaryDirectory(prefix="evilent-bench-demo-") as out, timer() as t:
        proc = subprocess.run([str(cli), "demo", "--output-dir", out], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ), check=False)
    print("\n### `evilent-nb demo` (own sandbox, 4 reports, 2 kernels at a time)\n")
    print(table(["command", "wall s", "exit code"], [["evilent-nb demo", t[0], proc.returncode]]))
    if proc.returncode not in (0, 1):
        print("\n```\n" + proc.stderr[-2000:] + "\n```")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
