"""``evilent-nb``: list, run, demo, sandbox, iam-policy.

The CLI only turns options into calls of :mod:`evilent_nb.report`. Every
:class:`~evilent_nb.exceptions.EvilentNbError` ends the program with its exit code and one
line on stderr (``evilent-nb: error: ...``), never a traceback.

Exit codes: 0 ran (nothing at or above ``--fail-on``), 1 a finding at or above
``--fail-on``, 2 bad input, 3 AWS unusable, 4 the report failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

from . import __version__
from .exceptions import BadInputError, EvilentNbError, ParameterError

__all__ = ["build_parser", "main"]

PROG = "evilent-nb"
SEVERITIES = ("P0", "P1", "P2", "P3")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit code 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``evilent-nb``."""
    parser = _Parser(prog=PROG, description="Run the EVILENT operations runbook as notebook reports.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("list", help="reports and their parameters (name, type, default, help)")

    run = sub.add_parser("run", help="run one report: DIR/REPORT.ipynb, .html, .summary.json, .evidence/")
    run.add_argument("report", metavar="REPORT", help="health, cost, incident or maintenance")
    run.add_argument(
        "-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
        help="set a report parameter (repeatable); see `evilent-nb list`",
    )
    run.add_argument("--output-dir", metavar="DIR", help="where to write (default reports/<UTC date>/; s3:// works)")
    run.add_argument("--fail-on", metavar="P0|P1|P2|P3", type=_severity,
                     help="exit 1 when a finding is at or above this severity")
    run.add_argument("--replay", metavar="EVIDENCE_DIR", help="re-run offline from DIR/REPORT.evidence")

    demo = sub.add_parser("demo", help="start the sandbox and run every report against it")
    demo.add_argument("--output-dir", metavar="DIR", help="where to write (default reports/<UTC date>/)")

    sandbox = sub.add_parser("sandbox", help="serve the local AWS stand-in until Ctrl-C")
    sandbox.add_argument("--scenario", default=None, metavar="NAME", help="incident (default) or healthy")
    sandbox.add_argument("--port", type=int, default=None, metavar="N", help="the moto server's port")

    iam = sub.add_parser("iam-policy", help="print the least-privilege read-only IAM policy (JSON)")
    iam.add_argument("--with-maintenance-writes", action="store_true",
                     help="add a separate statement for `maintenance -p apply true`")
    return parser


def _severity(text: str) -> str:
    value = text.strip().upper()
    if value not in SEVERITIES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(SEVERITIES)}, got {text!r}")
    return value


# -- commands ---------------------------------------------------------------------------


def _cmd_list(_: argparse.Namespace) -> int:
    from .report import REPORTS, report_parameters

    for i, report in enumerate(REPORTS.values()):
        if i:
            print()
        print(f"{report.name}: {report.description}")
        params = report_parameters(report)
        width = max((len(p.name) for p in params), default=4)
        for p in params:
            default = "(required)" if p.required else "-" if p.default is None else json.dumps(p.default)
            print(f"  {p.name:<{width}}  {p.type:<5}  {default:<10}  {p.help}".rstrip())
    return 0


def _parameters(pairs: Sequence[Sequence[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise ParameterError(f"parameter {name!r} given twice")
        out[name] = value
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from .report import run_report

    result = run_report(
        args.report,
        _parameters(args.parameter),
        output_dir=args.output_dir,
        fail_on=args.fail_on,
        replay=args.replay,
    )
    counts: dict[str, int] = {}
    for f in result.summary.get("findings", []):
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    found = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no findings"
    print(f"{result.report}: {result.status} ({found})")
    for kind in ("html", "summary", "notebook", "evidence"):
        print(f"  {kind:<8} {result.paths[kind]}")
    return result.exit_code


def _demo_parameters(sandbox: Any) -> dict[str, dict[str, str]]:
    scenario = sandbox.scenario
    spike = getattr(scenario, "spike", None)
    service = spike.service if spike is not None else scenario.services[0].name
    return {"health": {}, "cost": {}, "incident": {"service": service}, "maintenance": {}}


def _require_sandbox() -> None:
    """The sandbox runs on moto, an optional extra: say how to get it (exit code 2)."""
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise BadInputError(
            "the sandbox needs moto: pip install 'evilent-nb[sandbox]' (make demo installs it)"
        )


def _cmd_demo(args: argparse.Namespace) -> int:
    _require_sandbox()
    from .report import run_report
    from .sandbox import Sandbox

    rows: list[tuple[str, str, str]] = []
    worst = 0
    saved = dict(os.environ)
    print("starting the sandbox (scenario: incident) ...", file=sys.stderr, flush=True)
    with Sandbox("incident") as sandbox:
        os.environ.update(sandbox.env)  # kernels inherit it
        try:
            plan = _demo_parameters(sandbox)

            def one(name: str) -> tuple[str, str, str, int]:
                try:
                    res = run_report(name, plan[name], output_dir=args.output_dir, progress_bar=False)
                    return name, res.status, res.paths["html"], 0
                except EvilentNbError as exc:
                    print(f"{PROG}: error: {exc}", file=sys.stderr)
                    return name, "ERROR", getattr(exc, "notebook_path", None) or "-", exc.exit_code

            # Kernels are processes: two at a time keeps a small machine responsive.
            with ThreadPoolExecutor(max_workers=2) as pool:
                for name, status, path, code in pool.map(one, plan):
                    rows.append((name, status, path))
                    worst = max(worst, code)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    width = max(len(r[0]) for r in rows)
    print(f"{'report':<{width}}  status  path")
    for name, status, path in rows:
        print(f"{name:<{width}}  {status:<6}  {path}")
    return worst


def _cmd_sandbox(args: argparse.Namespace) -> int:
    _require_sandbox()
    from .sandbox import DEFAULT_SCENARIO, SCENARIOS, serve

    scenario = args.scenario or DEFAULT_SCENARIO
    if scenario not in SCENARIOS:
        raise BadInputError(f"unknown scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    serve(scenario, args.port)
    return 0


def _cmd_iam_policy(args: argparse.Namespace) -> int:
    from .iam import iam_policy

    print(json.dumps(iam_policy(with_maintenance_writes=args.with_maintenance_writes), indent=2))
    return 0


_COMMANDS = {
    "list": _cmd_list,
    "run": _cmd_run,
    "demo": _cmd_demo,
    "sandbox": _cmd_sandbox,
    "iam-policy": _cmd_iam_policy,
}


class _HeldWarnings(logging.Handler):
    """Holds log warnings (and Python warnings) of a command until it is known how it ended.

    Codes 2, 3 and 4 print exactly one line on stderr, so held warnings are dropped then;
    after a run that worked they follow as ``evilent-nb: warning: ...`` lines.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().splitlines()
        if record.name == "py.warnings":  # "file:line: Category: message"; ours only
            text = [t.split(": ", 2)[-1] for t in text[:1] if "evilent_nb" in t.split(":", 1)[0]]
        elif not record.name.startswith("evilent_nb"):
            return  # the libraries' chatter (nbconvert, traitlets ...) is not for the user
        if text and text[0] not in self.messages:
            self.messages.append(text[0])


@contextlib.contextmanager
def _hold_warnings() -> Iterator[_HeldWarnings]:
    root = logging.getLogger()
    held = _HeldWarnings()
    root.addHandler(held)
    logging.captureWarnings(True)
    try:
        yield held
    finally:
        logging.captureWarnings(False)
        root.removeHandler(held)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evilent-nb`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    with _hold_warnings() as held:
        code = _main(args)
    if code in (0, 1):
        for message in held.messages:
            print(f"{PROG}: warning: {message}", file=sys.stderr)
    return code


def _main(args: argparse.Namespace) -> int:
    try:
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except EvilentNbError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `evilent-nb iam-policy | head`: the reader left; say nothing more (as SIGPIPE would)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - a bug must not exit 1 ("a finding") with a traceback
        if os.environ.get("EVILENT_NB_DEBUG"):
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"{PROG}: error: unexpected failure: {message} (set EVILENT_NB_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
