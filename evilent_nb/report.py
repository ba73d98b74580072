"""The report runner: validate, pre-flight, execute with papermill, render, summarise.

How a report notebook talks to the runner
=========================================

A report notebook has exactly one cell tagged ``parameters``. It declares the report's
public parameters, one per line with a comment that becomes the help text of
``evilent-nb list``, and four internal ones (names starting with ``_``) that the runner
injects and a person never sets::

    region = None  # AWS region (default: the boto3 chain)
    profile = None  # AWS profile (default: the boto3 chain)
    config = None  # path to evilent.yml (default: ./evilent.yml if present)
    window = "24h"  # Nh, Nd, Nw or START/END in ISO-8601 UTC
    service = None  # required: a service's short name or stack name
    monthly_budget_usd: float = None  # monthly budget in USD (default: the rulebook's)
    _now = None  # internal: the run's frozen "now" (ISO-8601 UTC)
    _result_path = None  # internal: where ctx.finish() writes the result for the runner
    _evidence_dir = None  # internal: the evidence bundle to record into or replay from
    _replay = False  # internal: answer AWS calls from the evidence bundle

A parameter's type is its annotation (``int``, ``float``, ``bool``, ``str``; write
``name: float = None``, not ``float | None``, which papermill cannot read), else the
type of its default; a ``None`` default without annotation means ``str``. A parameter
whose default is ``None`` and whose comment contains the word "required" must be given.
Parameters named ``window``, ``start``/``end`` and ``severity`` are checked before the
kernel starts, and ``service`` is looked up in the discovered estate.

The next cell opens a :class:`ReportContext`; every later cell goes through it, and the
last code cell calls ``ctx.finish()``::

    ctx = ReportContext.open("health", region=region, profile=profile, config=config,
                             now=_now, result_path=_result_path, evidence_dir=_evidence_dir,
                             replay=_replay, parameters={"window": window})
    window_ = ctx.window(window)
    stacks = ctx.gather("cloudformation.DescribeStacks", inventory.stacks)
    probes = ctx.record_frame("probes", probe, ctx.estate.health_urls)
    ctx.add_findings(rules.health_findings(...))
    ctx.finish()

:class:`ReportContext` gives the notebook an instrumented session that records every AWS
answer into the evidence bundle, or replays them with no network (``ctx.session``), the
frozen now, windows relative to it, the estate, and a findings collector. It turns one
failed source into a ``data_unavailable`` finding (``ctx.gather``). A notebook that ends
without ``ctx.finish()`` is a failed report. The same notebook runs unchanged in
JupyterLab, where the internals keep their defaults (now is the current time, nothing
is recorded).

The runner
==========

:func:`run_report` validates the parameters against the parameters cell (exit code 2)
and checks that AWS answers (exit code 3) before any kernel starts, then executes the
notebook in a kernel of this very interpreter and writes::

    DIR/REPORT.ipynb          the executed notebook (kept when a cell fails)
    DIR/REPORT.html           rendered without code cells, figures embedded
    DIR/REPORT.summary.json   written last; "status": "ERROR" when the report failed
    DIR/REPORT.evidence/      manifest.json, calls.jsonl, frames/ (see evilent_nb.evidence)

``DIR`` may be ``s3://bucket/prefix``: the files are staged locally and written through
papermill's I/O at the end. ``--replay`` reads a local evidence bundle.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import pandas as pd

from .aws import client, get_session, translate_errors, usage
from .config import Config, load_config
from .exceptions import (
    AccessDeniedError,
    AwsAccessError,
    BadInputError,
    ConfigError,
    DataSourceError,
    EndpointUnreachableError,
    EvidenceError,
    EvilentNbError,
    NoCredentialsError,
    NoRegionError,
    ParameterError,
    ReportExecutionError,
    UnknownReportError,
    UnknownServiceError,
    WindowError,
)
from .frames import SCHEMAS, typed_frame
from .rules import SEVERITIES
from .timeframe import Window, isoformat, parse_time, parse_window, utcnow

__all__ = [
    "INTERNAL_PARAMETERS",
    "REPORTS",
    "SEVERITIES",
    "Parameter",
    "Report",
    "ReportContext",
    "RunResult",
    "findings_to_records",
    "merge_usage",
    "get_report",
    "notebook_path",
    "report_parameters",
    "resolve_parameters",
    "resolve_window",
    "run_report",
]

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: Injected by the runner; declared in every report's parameters cell.
INTERNAL_PARAMETERS = ("_now", "_result_path", "_evidence_dir", "_replay")
#: An incident window without ``start`` spans this much before ``end``.
DEFAULT_INCIDENT_SPAN = "3h"
#: Where ``run`` writes when no ``--output-dir`` is given (plus the UTC date).
DEFAULT_OUTPUT_ROOT = "reports"
#: A directory of notebooks that replaces the shipped ones (same file names).
NOTEBOOK_DIR_ENV = "EVILENT_NB_NOTEBOOK_DIR"
FINDING_FIELDS: tuple[str, ...] = tuple(SCHEMAS["findings"])

_ERROR_CLASSES: dict[str, type[EvilentNbError]] = {
    cls.__name__: cls
    for cls in (AwsAccessError, NoRegionError, NoCredentialsError, AccessDeniedError, EndpointUnreachableError)
}
#: Bad input only a kernel could see (an evilent.yml service override ...): still exit code 2.
_INPUT_ERROR_CLASSES: dict[str, type[EvilentNbError]] = {
    cls.__name__: cls for cls in (BadInputError, ParameterError, WindowError, UnknownServiceError, ConfigError)
}


# -- the registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A report: a name, its notebook and what it is for.

    Attributes
    ----------
    name
        What ``evilent-nb run`` takes.
    notebook
        A file name inside ``evilent_nb.notebooks`` (the repository's ``notebooks/``), or
        a path to any notebook.
    description
        One line for ``evilent-nb list``.
    needs_aws
        Whether the runner checks AWS before the kernel starts.
    """

    name: str
    notebook: str | Path
    description: str
    needs_aws: bool = True


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("health", "health.ipynb", "the daily health check: stacks, functions, probes, errors, metrics, DB, alarms"),
        Report("cost", "cost_review.ipynb", "the weekly cost review: month to date, forecast, movers, anomalies"),
        Report("incident", "incident.ipynb", "incident analysis and post-mortem for one service"),
        Report("maintenance", "maintenance.ipynb", "weekly and monthly hygiene: retention, stale streams, policies, backups"),
    )
}


def get_report(report: str | Report) -> Report:
    """The :class:`Report` called ``report`` (a :class:`Report` is returned as is).

    Raises
    ------
    UnknownReportError
        No such report; the message suggests the closest name.
    """
    if isinstance(report, Report):
        return report
    if report in REPORTS:
        return REPORTS[report]
    raise UnknownReportError(f"unknown report {report!r}{_did_you_mean(report, REPORTS)}; reports: {', '.join(REPORTS)}")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


@contextlib.contextmanager
def notebook_path(report: str | Report) -> Iterator[Path]:
    """The report's notebook as a file path (inside a context, for zipped installs).

    ``$EVILENT_NB_NOTEBOOK_DIR`` replaces the shipped notebooks with a directory of your own.
    """
    rep = get_report(report)
    if isinstance(rep.notebook, Path):
        path_cm: Any = contextlib.nullcontext(rep.notebook)
    elif os.environ.get(NOTEBOOK_DIR_ENV):
        path_cm = contextlib.nullcontext(Path(os.environ[NOTEBOOK_DIR_ENV]) / rep.notebook)
    else:
        path_cm = resources.as_file(resources.files("evilent_nb.notebooks").joinpath(rep.notebook))
    with path_cm as path:
        path = Path(path)
        if not path.is_file():
            raise EvilentNbError(f"the notebook of report {rep.name!r} is missing: {path}")
        yield path


# -- parameters -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One parameter of a report, read from its ``parameters`` cell.

    Attributes
    ----------
    name, type, default, help
        ``type`` is one of ``int``, ``float``, ``bool``, ``str``, ``list``, ``dict``.
    required
        Default ``None`` and "required" in the help.
    """

    name: str
    type: str
    default: Any
    help: str = ""
    required: bool = False

    @property
    def internal(self) -> bool:
        """Names starting with ``_`` belong to the runner."""
        return self.name.startswith("_")


_TYPE_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "list": "list", "dict": "dict"}


def _declared_type(annotation: str, default: Any) -> str:
    ann = (annotation or "None").strip().strip("'\"")
    m = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", ann)
    if m:
        ann = m.group(1).strip()
    if ann in _TYPE_NAMES:
        return _TYPE_NAMES[ann]
    if isinstance(default, bool):
        return "bool"
    for typ in (int, float, str, list, dict):
        if isinstance(default, typ):
            return typ.__name__
    return "str"


def _parse_default(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source  # an expression: shown as written


@functools.lru_cache(maxsize=32)
def _inspect(path: str, mtime: float) -> tuple[Parameter, ...]:
    import papermill as pm

    out = []
    for raw in pm.inspect_notebook(path).values():
        default = _parse_default(raw.get("default", "None"))
        help_text = (raw.get("help") or "").strip()
        out.append(
            Parameter(
                name=raw["name"],
                type=_declared_type(raw.get("inferred_type_name", "None"), default),
                default=default,
                help=help_text,
                required=default is None and re.search(r"\brequired\b", help_text, re.I) is not None,
            )
        )
    return tuple(out)


def _all_parameters(report: str | Report) -> list[Parameter]:
    with notebook_path(report) as path:
        return list(_inspect(str(path), path.stat().st_mtime))


def report_parameters(report: str | Report) -> list[Parameter]:
    """The public parameters of a report (internal ``_`` ones left out).

    Examples
    --------
    >>> [p.name for p in report_parameters("health")]       # doctest: +SKIP
    ['region', 'profile', 'config', 'window']
    """
    return [p for p in _all_parameters(report) if not p.internal]


def _coerce(report: str, param: Parameter, value: Any) -> Any:
    what = f"parameter {param.name!r} of report {report!r}"
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if param.type == "int":
                return int(text)
            if param.type == "float":
                number = float(text)
                if not math.isfinite(number):
                    raise ValueError(text)
                return number
            if param.type == "bool":
                low = text.lower()
                if low in ("true", "yes", "1", "on"):
                    return True
                if low in ("false", "no", "0", "off"):
                    return False
                raise ValueError(text)
            if param.type in ("list", "dict"):
                parsed = json.loads(text)
                if type(parsed).__name__ != param.type:
                    raise ValueError(text)
                return parsed
        except ValueError:
            expected = {"int": "an integer", "float": "a number", "bool": "true or false",
                        "list": "a JSON list", "dict": "a JSON object"}[param.type]
            raise ParameterError(f"{what} must be {expected}, got {value!r}") from None
        return value
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list | tuple),
        "dict": isinstance(value, dict),
    }[param.type]
    if not ok:
        raise ParameterError(f"{what} must be of type {param.type}, got {value!r}")
    return float(value) if param.type == "float" else list(value) if param.type == "list" else value


def resolve_window(
    spec: str | Window | None = None,
    *,
    start: Any = None,
    end: Any = None,
    now: Any = None,
    default: str = DEFAULT_INCIDENT_SPAN,
) -> Window:
    """A report's window: ``spec`` (``24h``, ``START/END``), or ``start``/``end``.

    Without ``spec``, ``end`` defaults to ``now`` and ``start`` to ``end`` minus ``default``.

    Raises
    ------
    WindowError
        Malformed, reversed, or in the future (see :func:`evilent_nb.timeframe.parse_window`).

    Examples
    --------
    >>> resolve_window(end="2026-11-28T09:00:00Z", now="2026-11-28T10:00:00Z").to_dict()
    {'start': '2026-11-28T06:00:00Z', 'end': '2026-11-28T09:00:00Z'}
    """
    ref = parse_time(now) if now is not None else utcnow()
    if spec is not None:
        return parse_window(spec, now=ref)
    end_dt = parse_time(end) if end not in (None, "") else ref
    if start not in (None, ""):
        start_dt = parse_time(start)
        if start_dt >= ref:
            raise WindowError(f"start ({isoformat(start_dt)}) is in the future (now is {isoformat(ref)})")
        if end_dt <= start_dt:
            raise WindowError(f"end ({isoformat(end_dt)}) must be after start ({isoformat(start_dt)})")
    else:
        start_dt = end_dt - parse_window(default, now=end_dt, max_age=None).duration
    return parse_window(Window(start_dt, end_dt), now=ref)


def resolve_parameters(
    report: str | Report,
    given: Mapping[str, Any] | None = None,
    *,
    now: Any = None,
) -> dict[str, Any]:
    """Check and type the parameters of a run, before any kernel starts.

    Parameters
    ----------
    report
        A report name or :class:`Report`.
    given
        Name -> value; strings (from the command line) are converted to the declared
        type, other values must already have it.
    now
        The run's "now", for windows.

    Returns
    -------
    dict
        Every public parameter with its effective value (defaults filled in).

    Raises
    ------
    ParameterError, WindowError, ConfigError
        An unknown, internal, badly typed or missing parameter; a bad window or time; an
        unknown severity; an unreadable config file.
    """
    rep = get_report(report)
    declared = {p.name: p for p in _all_parameters(rep)}
    public = {n: p for n, p in declared.items() if not p.internal}
    values: dict[str, Any] = {n: p.default for n, p in public.items()}
    for name, value in (given or {}).items():
        if name not in public:
            if name in declared:
                raise ParameterError(f"parameter {name!r} of report {rep.name!r} is internal and cannot be set")
            known = ", ".join(public) or "none"
            raise ParameterError(
                f"unknown parameter {name!r} for report {rep.name!r}{_did_you_mean(name, public)}; known: {known}"
            )
        values[name] = _coerce(rep.name, public[name], value)
    for name, param in public.items():
        if param.required and values[name] in (None, ""):
            raise ParameterError(f"report {rep.name!r} needs -p {name} VALUE ({param.help})")
    ref = parse_time(now) if now is not None else utcnow()
    if values.get("window") not in (None, ""):
        parse_window(values["window"], now=ref)
    if "start" in public or "end" in public:
        resolve_window(start=values.get("start"), end=values.get("end"), now=ref)
    if rep.name == "cost" and isinstance(values.get("window"), str):
        _check_cost_window(values["window"], ref)
    _check_ranges(rep.name, values)
    if values.get("severity") not in (None, ""):
        sev = str(values["severity"]).strip().upper()
        if sev not in _RANK:
            raise ParameterError(f"parameter 'severity' must be one of {', '.join(SEVERITIES)}, got {values['severity']!r}")
        values["severity"] = sev
    if "config" in public:
        load_config(values.get("config"))  # ConfigError (exit 2) now rather than in a cell
    return values


def _check_cost_window(spec: str, now: datetime) -> None:
    """Cost Explorer counts whole days (``12h`` is no cost window, ``48h`` is) and keeps
    less history than CloudWatch: what it would refuse is bad input here."""
    from .cost import _CE_MAX_AGE

    m = re.fullmatch(r"\s*(\d+)\s*h\s*", spec, re.IGNORECASE)
    if m and int(m.group(1)) % 24:
        raise WindowError(f"bad window {spec!r} for report 'cost': cost is counted in whole days; use Nd, Nw or START/END")
    win = parse_window(spec, now=now, max_age=None)
    if win.start < now - _CE_MAX_AGE:
        raise WindowError(
            f"window {spec!r} for report 'cost' starts more than {_CE_MAX_AGE.days} days ago; "
            "Cost Explorer keeps no older data"
        )


def _check_ranges(report: str, values: Mapping[str, Any]) -> None:
    """Values the kernel would refuse, refused before it starts (exit code 2)."""
    from .maintenance import RETENTION_DAYS

    days = values.get("retention_days")
    if days is not None and days not in RETENTION_DAYS:
        raise ParameterError(
            f"parameter 'retention_days' of report {report!r} must be a retention CloudWatch Logs accepts "
            f"({', '.join(map(str, RETENTION_DAYS))}), got {days!r}"
        )
    for name in ("stale_days", "monthly_budget_usd"):
        value = values.get(name)
        if value is not None and value < 0:
            raise ParameterError(f"parameter {name!r} of report {report!r} must not be negative, got {value!r}")


# -- pre-flight -------------------------------------------------------------------------


def _preflight(values: Mapping[str, Any]) -> boto3.Session:
    """A session, proven to reach AWS with one cheap call (AwsAccessError otherwise)."""
    # -p region wins over evilent.yml's region, which wins over the boto3 chain
    region = values.get("region") or load_config(values.get("config")).region
    session = get_session(values.get("profile"), region, max_attempts=2)
    try:
        with translate_errors("sts.GetCallerIdentity"):
            client("sts", session).get_caller_identity()
    except DataSourceError as exc:
        raise AwsAccessError(f"AWS does not answer: {exc}") from exc
    return session


def _check_service(name: str, config: Config, session: boto3.Session) -> None:
    from .estate import discover

    try:
        estate = discover(config=config, boto3_session=session)
    except DataSourceError:
        # Throttled, not forbidden (that is AwsAccessError, exit 3): the report itself
        # retries discovery and, if it fails again, ends as a failed report (exit 4).
        return
    estate.service(name)  # UnknownServiceError (exit 2) lists the known ones


# -- findings and summaries -------------------------------------------------------------


def _json_scalar(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple | dict) and pd.isna(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return isoformat(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def findings_to_records(findings: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Findings as summary.json holds them: NaN -> null, ``at`` ISO-8601 ``Z``.

    Examples
    --------
    >>> findings_to_records(pd.DataFrame([{"severity": "P2", "check": "x", "value": float("nan")}]))[0]["value"]
    """
    if findings is None or len(findings) == 0:
        return []
    frame = typed_frame(findings, "findings")
    records = []
    for row in frame.to_dict("records"):
        rec = {col: _json_scalar(row[col]) for col in FINDING_FIELDS}
        for col in ("value", "threshold"):
            if rec[col] is not None:
                rec[col] = float(rec[col])
        records.append(rec)
    return records


def _status(records: list[Mapping[str, Any]]) -> str:
    severities = [r.get("severity") for r in records if r.get("severity") in _RANK]
    return min(severities, key=_RANK.__getitem__) if severities else "OK"


def _redact_params(mapping: Mapping[str, Any]) -> dict[str, Any]:
    from .redact import redact_params

    return redact_params(dict(mapping))


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_json_scalar, allow_nan=False))


# -- the context a notebook uses ---------------------------------------------------------


_SOURCE_SCHEMAS = {"metric_data": "metrics", "read_events": "log_events", "cost_and_usage": "cost", "probe": "probes"}


class ReportContext:
    """What a report notebook uses to talk to AWS, the evidence bundle and the runner.

    Parameters
    ----------
    report
        The report's name.
    region, profile
        AWS region and profile (default: the boto3 chain; in replay, the recorded region).
    config
        Path to evilent.yml, or a :class:`~evilent_nb.config.Config`.
    now
        The frozen "now" (default: the current time; in replay, the recorded one).
    result_path
        Where :meth:`finish` writes the result for the runner (nothing when ``None``).
    evidence_dir
        Record every AWS answer there, or replay from there when ``replay``.
    replay
        Answer AWS calls from ``evidence_dir``: no network, no credentials.
    parameters
        The report's parameters, for the result (redacted there).
    boto3_session
        Use this session instead of creating one (evidence hooks are attached to it; they
        only reach clients created afterwards).

    Examples
    --------
    >>> ctx = ReportContext.open("health", now="2026-11-28T09:00:00Z")
    >>> ctx.window("24h").to_dict()
    {'start': '2026-11-27T09:00:00Z', 'end': '2026-11-28T09:00:00Z'}
    >>> ctx.status
    'OK'
    """

    def __init__(
        self,
        report: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        config: str | os.PathLike[str] | Config | None = None,
        now: Any = None,
        result_path: str | os.PathLike[str] | None = None,
        evidence_dir: str | os.PathLike[str] | None = None,
        replay: bool = False,
        parameters: Mapping[str, Any] | None = None,
        boto3_session: boto3.Session | None = None,
    ) -> None:
        self.report = report
        self.replay = bool(replay)
        self.evidence_dir = Path(evidence_dir) if evidence_dir else None
        if self.replay:
            if self.evidence_dir is None:
                raise EvidenceError("replay needs an evidence bundle (evidence_dir)")
            from .evidence import read_manifest

            manifest = read_manifest(self.evidence_dir)
            now = now or manifest.get("now")
            region = region or manifest.get("region")
        self.now: datetime = parse_time(now) if now not in (None, "") else utcnow()
        self.profile = profile or None
        self.config: Config = config if isinstance(config, Config) else load_config(config)
        self.region = region or self.config.region or None  # evilent.yml's region, as in the pre-flight
        self.result_path = Path(result_path) if result_path else None
        self.parameters = dict(parameters or {})
        self.sources: dict[str, str] = {}
        self.result: dict[str, Any] | None = None
        self._session = boto3_session
        self._hooked = False
        self._estate: Any = None
        #: Why discovery failed (the estate is then empty), or ``None``.
        self.estate_error: DataSourceError | None = None
        self._findings: list[pd.DataFrame] = []
        self._window: Window | None = None
        self._frame_names: Counter[str] = Counter()

    @classmethod
    def open(cls, report: str, **kwargs: Any) -> ReportContext:
        """Open the context of a report run (the arguments of :class:`ReportContext`)."""
        return cls(report, **kwargs)

    # AWS ----------------------------------------------------------------------------
    @property
    def session(self) -> boto3.Session:
        """The report's boto3 session: instrumented, recording or replaying evidence."""
        if self._session is None:
            if self.replay:
                self._session = get_session(region=self.region, require_credentials=False)
            else:
                self._session = get_session(self.profile, self.region)
        if not self._hooked:
            self._hooked = True
            if self.evidence_dir is not None:
                from .evidence import Recorder, Replayer

                hook = Replayer(self.evidence_dir) if self.replay else Recorder(self.evidence_dir)
                hook.attach(self._session)
        return self._session

    @property
    def estate(self) -> Any:
        """The discovered :class:`~evilent_nb.estate.Estate` (discovered once, lazily)."""
        if self._estate is None:
            from .estate import Estate, discover

            try:
                self._estate = discover(config=self.config, boto3_session=self.session)
            except DataSourceError as exc:
                # A throttled discovery call must not sink the whole report: it goes on with
                # no services (DB, bucket, alarms, cost still judged) and says what is missing.
                self.estate_error = exc
                self._unavailable(exc.source or "cloudformation.DescribeStacks", exc)
                cfg = self.config
                self._estate = Estate(
                    region=self.session.region_name, services=[], db_instances=list(cfg.db_instances),
                    backup_bucket=cfg.backup_bucket, backup_prefixes=list(cfg.backup_prefixes), config=cfg,
                )
        return self._estate

    def _unavailable(self, source: str, exc: BaseException) -> None:
        """One ``data_unavailable`` finding per failed source, however often it is asked."""
        from .rules import data_unavailable

        if self.sources.get(source, "ok") == "ok":
            self.add_findings(data_unavailable(source, exc))
        self.sources[source] = str(exc)

    def gather(
        self,
        source: str,
        fn: Callable[..., Any],
        *args: Any,
        empty: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Call an AWS source; if it fails, note a ``data_unavailable`` finding and go on.

        ``fn(*args, **kwargs, boto3_session=ctx.session)`` is called. A
        :class:`~evilent_nb.exceptions.DataSourceError` becomes a P2 finding naming
        ``source`` and the call returns ``empty`` (default: the typed empty frame of the
        function's schema). :class:`~evilent_nb.exceptions.AwsAccessError` propagates: the
        report cannot go on.

        Examples
        --------
        >>> stacks = ctx.gather("cloudformation.DescribeStacks", inventory.stacks)   # doctest: +SKIP
        """
        kwargs.setdefault("boto3_session", self.session)
        try:
            result = fn(*args, **kwargs)
        except DataSourceError as exc:
            self._unavailable(source, exc)
            if empty is not None:
                return empty
            schema = _SOURCE_SCHEMAS.get(getattr(fn, "__name__", ""), getattr(fn, "__name__", ""))
            return typed_frame([], schema) if schema in SCHEMAS else pd.DataFrame()
        self.sources[source] = "ok"
        return result

    def record_frame(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Non-AWS data (HTTP probes ...): recorded into the evidence, replayed from it.

        Returns ``fn(*args, **kwargs)``, or in replay the value recorded under ``name``.
        """
        self._frame_names[name] += 1
        key = name if self._frame_names[name] == 1 else f"{name}-{self._frame_names[name]}"
        from .evidence import read_frame, write_frame

        if self.replay:
            assert self.evidence_dir is not None
            return read_frame(self.evidence_dir, key)
        data = fn(*args, **kwargs)
        if self.evidence_dir is not None:
            write_frame(self.evidence_dir, key, data)
        return data

    # time ---------------------------------------------------------------------------
    def window(
        self,
        spec: str | Window | None = None,
        *,
        start: Any = None,
        end: Any = None,
        default: str = DEFAULT_INCIDENT_SPAN,
    ) -> Window:
        """A window relative to the frozen now (see :func:`resolve_window`).

        The first window asked for is the report's window in summary.json.
        """
        win = resolve_window(spec, start=start, end=end, now=self.now, default=default)
        if self._window is None:
            self._window = win
        return win

    # findings -----------------------------------------------------------------------
    def add_findings(self, findings: pd.DataFrame | None) -> pd.DataFrame:
        """Collect findings (any frame with the findings columns); returns them typed."""
        from .rules import findings_frame

        frame = findings_frame(findings if findings is not None else [])
        if not frame.empty:
            self._findings.append(frame)
        return frame

    @property
    def findings(self) -> pd.DataFrame:
        """Every finding so far, most severe first."""
        from .rules import findings_frame

        parts = [f for f in self._findings if not f.empty]
        return findings_frame(pd.concat(parts, ignore_index=True) if parts else [])

    @property
    def status(self) -> str:
        """The highest severity so far, or ``"OK"``."""
        return _status(findings_to_records(self.findings))

    @property
    def usage(self) -> dict[str, Any]:
        """API calls made so far and their estimated price (``api_usage``)."""
        if self._session is None:
            return {"calls": {}, "total_calls": 0, "estimated_cost_usd": 0.0}
        return usage(self._session).to_dict()

    def finish(self) -> None:
        """Hand the result to the runner (``ctx.result`` holds it too).

        A report notebook calls this in its last code cell.
        """
        records = findings_to_records(self.findings)
        region = self._session.region_name if self._session is not None else self.region
        self.result = _jsonable(
            {
                "report": self.report,
                "generated_at": isoformat(self.now),
                "window": self._window.to_dict() if self._window else {"start": None, "end": None},
                "region": region,
                "parameters": _redact_params(self.parameters),
                "status": _status(records),
                "findings": records,
                "api_usage": self.usage,
                "sources": dict(self.sources),
            }
        )
        if self.result_path is not None:
            _write_json_atomic(self.result_path, self.result)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- execution --------------------------------------------------------------------------


@functools.cache
def _kernel_manager_class() -> type:
    """A kernel manager whose kernel is always this interpreter, with ``MPLBACKEND=agg``.

    A ``python3`` kernelspec may point anywhere (a user-level one wins over the venv's),
    so the spec is built here instead of looked up.
    """
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class ThisInterpreterKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    env={"MPLBACKEND": "agg"},
                    display_name=f"evilent-nb ({sys.executable})",
                    language="python",
                    resource_dir=str(Path(sys.executable).parent),
                    metadata={},
                )
            return self._kernel_spec

        async def start_kernel(self, **kw: Any) -> None:
            # The kernel's own chatter (ipykernel's transport warning ...) must not reach
            # the CLI's stderr, which carries one line per error; outputs go to the notebook.
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super().start_kernel(**kw)

    return ThisInterpreterKernelManager


def _execute(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, Any],
    *,
    progress_bar: bool,
    timeout_s: float | None,
) -> None:
    import papermill as pm

    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=dict(parameters),
        kernel_name="python3",  # picks papermill's Python translator; the kernel is ours
        kernel_manager_class=_kernel_manager_class(),
        progress_bar=progress_bar,
        log_output=False,
        start_timeout=120,
        execution_timeout=timeout_s,
    )


def render_html(notebook: str | Path, html: str | Path, *, title: str | None = None) -> Path:
    """Render an executed notebook to HTML: no code, no prompts, no stderr, figures inline.

    Parameters
    ----------
    notebook
        The executed ``.ipynb``.
    html
        Where to write the page.
    title
        The page title (default: the notebook's name).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            # Warnings printed to stderr are noise for the reader of a report.
            cell["outputs"] = [
                o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    exporter = HTMLExporter(
        template_name="lab",
        template_file="evilent.html.j2",
        extra_template_paths=[str(resources.files("evilent_nb").joinpath("templates"))],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or Path(notebook).stem}})
    out = Path(html)
    out.write_text(body, encoding="utf-8")
    return out


@dataclass
class RunResult:
    """What :func:`run_report` did.

    Attributes
    ----------
    report, status
        ``status`` as in summary.json (``P0``-``P3``, ``OK``).
    exit_code
        0, or 1 when a finding is at or above ``fail_on``.
    summary
        The summary.json content.
    paths
        ``notebook``, ``html``, ``summary``, ``evidence`` -> where they were written.
    """

    report: str
    status: str
    exit_code: int
    summary: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)


def _is_remote(path: str) -> bool:
    return "://" in path


def _upload(local_dir: Path, remote_dir: str) -> None:
    from papermill.iorw import papermill_io

    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    # The summary goes last: its presence says the rest is there.
    files.sort(key=lambda p: p.name.endswith(".summary.json"))
    for path in files:
        rel = path.relative_to(local_dir).as_posix()
        papermill_io.write(
            path.read_text(encoding="utf-8"), remote_dir.rstrip("/") + "/" + rel, extensions=[path.suffix]
        )


def run_report(
    report: str | Report,
    parameters: Mapping[str, Any] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    fail_on: str | None = None,
    replay: str | os.PathLike[str] | None = None,
    progress_bar: bool | None = None,
    timeout_s: float | None = None,
) -> RunResult:
    """Run a report notebook and write its notebook, HTML, summary and evidence.

    Parameters
    ----------
    report
        ``health``, ``cost``, ``incident``, ``maintenance`` (or a :class:`Report`).
    parameters
        Name -> value; strings are converted to the declared types.
    output_dir
        Default ``reports/<UTC date>/``; ``s3://...`` works through papermill's I/O.
    fail_on
        ``P0``..``P3``: exit code 1 when a finding is at or above it.
    replay
        An evidence bundle (``DIR/REPORT.evidence``) to re-run offline from: its recorded
        now, region and parameters are used, and AWS is never contacted.
    progress_bar
        Default: when stderr is a terminal.
    timeout_s
        Per-cell time limit (default none).

    Returns
    -------
    RunResult

    Raises
    ------
    BadInputError
        Unknown report, bad parameter, window, config or service (exit code 2), before
        any kernel starts.
    AwsAccessError
        AWS cannot be used (exit code 3), checked before any kernel starts.
    ReportExecutionError
        A cell failed, or the notebook never called ``ctx.finish()`` (exit code 4); the
        executed notebook is kept and the summary says ``"status": "ERROR"``.

    Examples
    --------
    >>> run_report("health", {"window": "6h"}, output_dir="out", fail_on="P1").exit_code  # doctest: +SKIP
    0
    """
    rep = get_report(report)
    if fail_on is not None and str(fail_on).upper() not in _RANK:
        raise BadInputError(f"--fail-on must be one of {', '.join(SEVERITIES)}, got {fail_on!r}")
    manifest: dict[str, Any] | None = None
    if replay is not None:
        from .evidence import read_manifest

        manifest = read_manifest(replay)
        if manifest["report"] != rep.name:
            raise EvidenceError(f"evidence {str(replay)!r} was recorded by report {manifest['report']!r}, not {rep.name!r}")
        if parameters:
            raise ParameterError("--replay re-runs with the recorded parameters; drop -p")
        now = parse_time(manifest["now"])
        given = {k: v for k, v in manifest["parameters"].items()}
    else:
        now = utcnow()
        given = dict(parameters or {})

    values = resolve_parameters(rep, given, now=now)
    region = values.get("region")
    out_dir = str(output_dir) if output_dir else os.path.join(DEFAULT_OUTPUT_ROOT, now.strftime("%Y-%m-%d"))
    pre_usage: dict[str, Any] | None = None
    if manifest is not None:
        region = manifest.get("region") or region
    elif rep.needs_aws:
        try:
            session = _preflight(values)
            region = session.region_name
            if values.get("service") not in (None, ""):
                _check_service(str(values["service"]), load_config(values.get("config")), session)
        except AwsAccessError as exc:
            _mark_failed(rep, out_dir, now, values, exc)
            raise
        # the pre-flight's calls are the report's calls too
        pre_usage = usage(session).to_dict()

    remote = _is_remote(out_dir)
    staging_tmp = tempfile.mkdtemp(prefix="evilent-nb-") if remote else None
    local_dir = Path(staging_tmp) if staging_tmp else Path(out_dir)
    try:
        return _run(rep, values, now, region, manifest, replay, local_dir, out_dir, fail_on, progress_bar, timeout_s,
                    pre_usage)
    finally:
        if staging_tmp:
            try:
                _upload(local_dir, out_dir)
            except Exception as exc:  # noqa: BLE001 - any I/O failure of papermill's handlers
                raise AwsAccessError(f"cannot write the report to {out_dir}: {exc}") from exc
            finally:
                shutil.rmtree(staging_tmp, ignore_errors=True)


def _run(
    rep: Report,
    values: dict[str, Any],
    now: datetime,
    region: str | None,
    manifest: Mapping[str, Any] | None,
    replay: str | os.PathLike[str] | None,
    local_dir: Path,
    out_dir: str,
    fail_on: str | None,
    progress_bar: bool | None,
    timeout_s: float | None,
    pre_usage: Mapping[str, Any] | None = None,
) -> RunResult:
    from .evidence import write_manifest

    nb_out = local_dir / f"{rep.name}.ipynb"
    html_out = local_dir / f"{rep.name}.html"
    summary_out = local_dir / f"{rep.name}.summary.json"
    evidence = local_dir / f"{rep.name}.evidence"
    try:
        local_dir.mkdir(parents=True, exist_ok=True)
        summary_out.unlink(missing_ok=True)  # an earlier run's summary must not outlive this one
        if manifest is not None:
            assert replay is not None
            if Path(replay).resolve() != evidence.resolve():
                shutil.rmtree(evidence, ignore_errors=True)
                shutil.copytree(replay, evidence)
        else:
            shutil.rmtree(evidence, ignore_errors=True)
            evidence.mkdir(parents=True)
        probe = local_dir / f".{rep.name}.write-test"
        probe.write_bytes(b"")  # a read-only directory fails here, not after the kernel ran
        probe.unlink()
    except OSError as exc:
        # Before any kernel: the output directory is bad input (exit 2), not a failed report.
        raise BadInputError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None

    # The effective parameters that have a value, as summary.json and the manifest show them.
    shown = {k: v for k, v in values.items() if v is not None}
    kernel_params = {k: v for k, v in values.items() if v is not None}
    if kernel_params.get("config"):
        kernel_params["config"] = str(Path(kernel_params["config"]).resolve())
    if manifest is not None and region:
        kernel_params["region"] = region

    work = Path(tempfile.mkdtemp(prefix="evilent-nb-run-"))
    result_path = work / "result.json"
    kernel_params.update(
        _now=isoformat(now),
        _result_path=str(result_path),
        _evidence_dir=str(evidence.resolve()),
        _replay=manifest is not None,
    )
    base = {
        "report": rep.name,
        "generated_at": isoformat(now),
        "window": {"start": None, "end": None},
        "region": region,
        "parameters": _redact_params(shown),
    }
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()

    def paths() -> dict[str, str]:
        join = (lambda n: out_dir.rstrip("/") + "/" + n) if _is_remote(out_dir) else (lambda n: str(Path(out_dir) / n))
        return {k: join(v.name) for k, v in
                {"notebook": nb_out, "html": html_out, "summary": summary_out, "evidence": evidence}.items()}

    failure: EvilentNbError | None = None
    result: dict[str, Any] | None = None
    try:
        with notebook_path(rep) as nb_in:
            try:
                _execute(nb_in, nb_out, kernel_params, progress_bar=progress_bar, timeout_s=timeout_s)
            except Exception as exc:  # noqa: BLE001 - every kernel failure becomes exit 4 (or 3)
                failure = _as_failure(rep.name, exc, paths()["notebook"], _source_cell(nb_out, exc))
        if failure is None:
            if not result_path.is_file():
                failure = ReportExecutionError(
                    rep.name, ename="ReportError", evalue="the notebook ended without calling ctx.finish()",
                    notebook_path=paths()["notebook"],
                )
            else:
                result = json.loads(result_path.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if manifest is None:
        # The pre-flight's calls happened outside the kernel: keep their count so that a
        # replay reports the same api_usage as the run it reproduces.
        write_manifest(evidence, report=rep.name, parameters=_redact_params(shown), now=now, region=region,
                       extra={"preflight_usage": dict(pre_usage)} if pre_usage else None)
    else:
        pre_usage = manifest.get("preflight_usage") or None

    if nb_out.is_file():
        try:
            render_html(nb_out, html_out, title=f"evilent-nb {rep.name} report")
        except Exception as exc:  # noqa: BLE001
            if failure is None:
                failure = ReportExecutionError(rep.name, ename="HTMLExportError", evalue=str(exc))

    if failure is not None:
        summary = {**base, **_pick(result, "window", "region"), "status": "ERROR", "error": str(failure),
                   "findings": (result or {}).get("findings", []),
                   "api_usage": merge_usage((result or {}).get("api_usage", {}), pre_usage)}
        _write_json_atomic(summary_out, summary)
        raise failure

    assert result is not None
    findings = result.get("findings", [])
    summary = {
        **base,
        **_pick(result, "window", "region"),
        "status": _status(findings),
        "findings": findings,
        "api_usage": merge_usage(result.get("api_usage", {}), pre_usage),
    }
    _write_json_atomic(summary_out, summary)
    exit_code = 0
    if fail_on is not None:
        limit = _RANK[str(fail_on).upper()]
        if any(_RANK.get(f.get("severity"), 99) <= limit for f in findings):
            exit_code = 1
    return RunResult(rep.name, summary["status"], exit_code, summary, paths())


def merge_usage(report: Mapping[str, Any], preflight: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report kernel's ``api_usage`` plus the runner's pre-flight calls.

    Examples
    --------
    >>> merge_usage({"calls": {"ce.GetCostAndUsage": 1}, "total_calls": 1, "estimated_cost_usd": 0.01},
    ...             {"calls": {"sts.GetCallerIdentity": 1}, "total_calls": 1, "estimated_cost_usd": 0.0})
    {'calls': {'ce.GetCostAndUsage': 1, 'sts.GetCallerIdentity': 1}, 'total_calls': 2, 'estimated_cost_usd': 0.01, 'preflight_calls': 1}
    """
    merged = dict(report or {})
    if not preflight:
        return merged
    calls = Counter(merged.get("calls") or {})
    calls.update(preflight.get("calls") or {})
    merged["calls"] = dict(sorted(calls.items()))
    merged["total_calls"] = sum(calls.values())
    for key in ("metrics_requested", "bytes_scanned"):
        if key in merged or key in preflight:
            merged[key] = merged.get(key, 0) + preflight.get(key, 0)
    merged["estimated_cost_usd"] = round(
        float(merged.get("estimated_cost_usd") or 0.0) + float(preflight.get("estimated_cost_usd") or 0.0), 6)
    merged["preflight_calls"] = sum((preflight.get("calls") or {}).values())
    return merged


def _mark_failed(rep: Report, out_dir: str, now: datetime, values: Mapping[str, Any], exc: BaseException) -> None:
    """AWS could not be used: an earlier run's summary in ``out_dir`` must not pass for this one's.

    When the local output directory already holds this report's summary (a scheduler runs
    into the same dated directory), it is replaced by one saying ``"status": "ERROR"``.
    Otherwise nothing is written.
    """
    target = Path(out_dir) / f"{rep.name}.summary.json"
    if _is_remote(out_dir) or not target.is_file():
        return
    summary = {
        "report": rep.name, "generated_at": isoformat(now), "window": {"start": None, "end": None},
        "region": values.get("region"), "parameters": _redact_params({k: v for k, v in values.items() if v is not None}),
        "status": "ERROR", "error": str(exc), "findings": [], "api_usage": {"calls": {}, "estimated_cost_usd": 0.0},
    }
    with contextlib.suppress(OSError):
        _write_json_atomic(target, summary)


def _pick(result: Mapping[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: result[k] for k in keys if result and result.get(k) is not None}


def _source_cell(executed: Path, exc: BaseException) -> int | None:
    """The failing cell's index in the report's own notebook.

    papermill counts the cell it injects, and then adds error banners above it.
    """
    count = getattr(exc, "exec_count", None)
    if count is None or not executed.is_file():
        return getattr(exc, "cell_index", None)
    try:
        import nbformat

        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # noqa: BLE001 - fall back to papermill's own index
        return getattr(exc, "cell_index", None)
    own = [c for c in cells if not {"injected-parameters", "papermill-error-cell-tag"} & set(c.metadata.get("tags", []))]
    for i, cell in enumerate(own):
        if cell.get("cell_type") == "code" and cell.get("execution_count") == count:
            return i
    return getattr(exc, "cell_index", None)


def _as_failure(report: str, exc: BaseException, notebook: str, cell: int | None) -> EvilentNbError:
    """A kernel-side failure as the error the CLI reports (exit 4, or 3 for AWS access)."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc))
    aws_cls = _ERROR_CLASSES.get(ename)
    if aws_cls is not None:
        where = f"cell {cell}" if cell is not None else "a cell"
        first = evalue.strip().splitlines()[0] if evalue.strip() else ename
        return aws_cls(f"report {report!r} could not use AWS in {where}: {first} (executed notebook kept at {notebook})")
    input_cls = _INPUT_ERROR_CLASSES.get(ename)
    if input_cls is not None:
        first = evalue.strip().splitlines()[0] if evalue.strip() else ename
        return input_cls(f"report {report!r}: {first} (executed notebook kept at {notebook})")
    return ReportExecutionError(report, cell_index=cell, ename=ename, evalue=evalue, notebook_path=notebook)
