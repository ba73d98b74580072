"""Evidence: record the AWS answers a report saw, and replay them offline.

A report run keeps its evidence in ``DIR/REPORT.evidence/``::

    manifest.json    report, parameters, now, region, created, calls, evilent-nb version
    calls.jsonl      one line per AWS call: service, operation, params, status, response
    frames/*.json    non-AWS data (HTTP probes ...) recorded with ReportContext.record_frame

Recording and replay both work through botocore's event system, on the session, before
its clients exist:

- :class:`Recorder` listens on ``after-call`` (and ``after-call-error``) and appends the
  parsed response of every call. ``ResponseMetadata`` is dropped, datetimes are tagged so
  that JSON keeps them, and every string goes through ``redact_obj`` so that no secret
  lands in the bundle.
- :class:`Replayer` answers ``before-call`` with ``(http_response_stub, parsed)``. botocore
  then skips the network (``_make_api_call`` uses the event's response when it is not
  ``None``), so the library takes the very same code path offline, errors included: a
  recorded error answer raises the same ``ClientError`` again.

Calls are matched on (service, operation, canonical parameters) plus an occurrence
counter, so the third identical ``GetQueryResults`` poll gets the third recorded answer
(and, once the recorded ones run out, the last one again). A call that was never
recorded raises :class:`~evilent_nb.exceptions.EvidenceError` naming it.

Streaming bodies (``s3.GetObject``) are not recorded; no report reads one.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
import pandas as pd
from botocore.awsrequest import AWSResponse

from . import __version__
from .exceptions import EvidenceError
from .redact import redact_obj
from .timeframe import isoformat, utcnow

__all__ = [
    "CALLS_FILE",
    "FRAMES_DIR",
    "MANIFEST_FILE",
    "Recorder",
    "Replayer",
    "read_frame",
    "read_manifest",
    "write_frame",
    "write_manifest",
]

MANIFEST_FILE = "manifest.json"
CALLS_FILE = "calls.jsonl"
FRAMES_DIR = "frames"
_PARAMS_KEY = "evilent_evidence_params"


# -- JSON with tagged datetimes and bytes -----------------------------------------------


def _tag(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return {"__datetime__": obj.isoformat()}
    if isinstance(obj, date):
        return {"__date__": obj.isoformat()}
    if isinstance(obj, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, Mapping):
        return {str(k): _tag(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_tag(v) for v in obj]
    if hasattr(obj, "read"):  # a StreamingBody: reading it would starve the caller
        return {"__stream__": True}
    return obj


def _untag(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1:
            (key, value), = obj.items()
            if key == "__datetime__":
                return datetime.fromisoformat(value)
            if key == "__date__":
                return date.fromisoformat(value)
            if key == "__bytes__":
                return base64.b64decode(value)
            if key == "__stream__":
                return None
        return {k: _untag(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untag(v) for v in obj]
    return obj


def _canonical(service: str, operation: str, params: Mapping[str, Any] | None) -> str:
    # Redacted on both sides, so a recorded (redacted) call still matches the live one.
    body = redact_obj(_tag(dict(params or {})))
    return f"{service}.{operation} " + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # after-call does not see the API parameters; the request context travels with the call.
    context[_PARAMS_KEY] = copy.deepcopy(params)


def _names(model: Any) -> tuple[str, str]:
    return model.service_model.service_name, model.name


def _remember_model(model: Any, context: dict[str, Any], **_: Any) -> None:
    # after-call-error sees neither the model nor the parameters.
    context["evilent_evidence_model"] = _names(model)


# -- recording --------------------------------------------------------------------------


class Recorder:
    """Appends every AWS call made through a session to ``DIR/calls.jsonl``.

    Parameters
    ----------
    directory
        The evidence bundle (created if needed).

    Examples
    --------
    >>> rec = Recorder("reports/health.evidence")        # doctest: +SKIP
    >>> rec.attach(session)                               # doctest: +SKIP
    >>> client("cloudformation", session).describe_stacks()   # doctest: +SKIP
    >>> rec.calls                                         # doctest: +SKIP
    1
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CALLS_FILE
        self.calls = 0
        self._lock = threading.Lock()

    def attach(self, session: boto3.Session) -> Recorder:
        """Register on ``session`` (before its clients are created); returns ``self``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        events = session.events
        events.register("before-parameter-build", _remember_params, unique_id="evilent-evidence-params")
        events.register("before-call", _remember_model, unique_id="evilent-evidence-model")
        events.register("after-call", self._after_call, unique_id=f"evilent-evidence-rec-{id(self)}")
        events.register(
            "after-call-error", self._after_call_error, unique_id=f"evilent-evidence-err-{id(self)}"
        )
        return self

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(redact_obj(_tag(entry)), sort_keys=True, default=str)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self.calls += 1

    def _after_call(self, http_response: Any, parsed: Any, model: Any, context: dict, **_: Any) -> None:
        service, operation = _names(model)
        response = {k: v for k, v in (parsed or {}).items() if k != "ResponseMetadata"}
        status = int(getattr(http_response, "status_code", 200) or 200)
        self._write(
            {
                "service": service,
                "operation": operation,
                "params": context.get(_PARAMS_KEY, {}),
                "status": status,
                "response": response,
            }
        )

    def _after_call_error(self, exception: BaseException, context: dict, **kwargs: Any) -> None:
        # Transport failures (timeouts, closed connections) never reach after-call.
        if not isinstance(exception, bex.BotoCoreError):
            return
        model = context.get("evilent_evidence_model")
        if model is None:
            return
        service, operation = model
        self._write(
            {
                "service": service,
                "operation": operation,
                "params": context.get(_PARAMS_KEY, {}),
                "exception": {
                    "type": type(exception).__name__,
                    "kwargs": {k: str(v) for k, v in getattr(exception, "kwargs", {}).items()},
                },
            }
        )


# -- replay -----------------------------------------------------------------------------


class Replayer:
    """Answers every AWS call of a session from ``DIR/calls.jsonl``, with no network.

    Parameters
    ----------
    directory
        The evidence bundle of an earlier run.

    Raises
    ------
    EvidenceError
        The bundle has no readable ``calls.jsonl``.

    Examples
    --------
    >>> s = get_session(region="eu-central-1", require_credentials=False)   # doctest: +SKIP
    >>> Replayer("reports/health.evidence").attach(s)                        # doctest: +SKIP
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        path = self.directory / CALLS_FILE
        self._answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._seen: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        if not self.directory.is_dir():
            raise EvidenceError(f"evidence bundle {str(self.directory)!r} not found")
        if path.is_file():
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
                entries = [json.loads(line) for line in lines if line.strip()]
            except (OSError, ValueError) as exc:
                raise EvidenceError(f"evidence {str(path)!r} is unreadable: {exc}") from exc
            for entry in entries:
                key = _canonical(entry["service"], entry["operation"], _untag(entry.get("params")))
                self._answers[key].append(entry)

    @property
    def calls(self) -> int:
        """How many recorded answers the bundle holds."""
        return sum(len(v) for v in self._answers.values())

    def attach(self, session: boto3.Session) -> Replayer:
        """Register on ``session`` (before its clients are created); returns ``self``."""
        events = session.events
        events.register("before-parameter-build", _remember_params, unique_id="evilent-evidence-params")
        events.register("before-call", self._before_call, unique_id=f"evilent-evidence-replay-{id(self)}")
        return self

    def _before_call(self, model: Any, context: dict, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        service, operation = _names(model)
        params = context.get(_PARAMS_KEY, {})
        key = _canonical(service, operation, params)
        with self._lock:
            answers = self._answers.get(key)
            if not answers:
                shown = json.dumps(_tag(params), sort_keys=True, default=str)
                if len(shown) > 200:
                    shown = shown[:200] + "..."
                raise EvidenceError(
                    f"no recorded answer in {str(self.directory)!r} for {service}.{operation} {shown}"
                )
            n = self._seen[key]
            self._seen[key] = n + 1
            entry = answers[min(n, len(answers) - 1)]
        if "exception" in entry:
            raise _rebuild_exception(entry["exception"])
        status = int(entry.get("status", 200))
        parsed = _untag(copy.deepcopy(entry.get("response") or {}))
        parsed["ResponseMetadata"] = {
            "RequestId": "evidence-replay",
            "HTTPStatusCode": status,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
        return AWSResponse(f"evidence://{service}/{operation}", status, {}, None), parsed


def _rebuild_exception(spec: Mapping[str, Any]) -> BaseException:
    cls = getattr(bex, str(spec.get("type")), None)
    kwargs = dict(spec.get("kwargs") or {})
    if isinstance(cls, type) and issubclass(cls, bex.BotoCoreError):
        try:
            return cls(**kwargs)
        except Exception:  # noqa: BLE001 - a format field we did not keep
            pass
    return bex.BotoCoreError(msg=f"{spec.get('type')}: {kwargs}")


# -- frames and manifest ----------------------------------------------------------------


def _frame_path(directory: str | Path, name: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return Path(directory) / FRAMES_DIR / f"{safe}.json"


def write_frame(directory: str | Path, name: str, data: Any) -> Path:
    """Store non-AWS data (a frame, or anything JSON can hold) in ``frames/NAME.json``.

    Frames keep their dtypes (pandas' ``table`` orient), strings are redacted.
    """
    path = _frame_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        for col in frame.columns:
            if frame[col].dtype == object or str(frame[col].dtype) == "string":
                frame[col] = frame[col].map(redact_obj, na_action="ignore").astype(frame[col].dtype)
        body = {"kind": "frame", "data": json.loads(frame.to_json(orient="table", date_format="iso", double_precision=15))}
    else:
        body = {"kind": "json", "data": redact_obj(_tag(data))}
    path.write_text(json.dumps(body, sort_keys=True, default=str), encoding="utf-8")
    return path


def read_frame(directory: str | Path, name: str) -> Any:
    """The data :func:`write_frame` stored under ``name``.

    Raises
    ------
    EvidenceError
        Nothing was recorded under that name.
    """
    path = _frame_path(directory, name)
    if not path.is_file():
        raise EvidenceError(f"no recorded data {name!r} in evidence {str(directory)!r}")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"evidence {str(path)!r} is unreadable: {exc}") from exc
    if body.get("kind") == "frame":
        import io

        frame = pd.read_json(io.StringIO(json.dumps(body["data"])), orient="table")
        for col in frame.columns:  # nanoseconds, as typed_frame builds them
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                frame[col] = frame[col].astype("datetime64[ns, UTC]")
        return frame
    return _untag(body.get("data"))


def write_manifest(
    directory: str | Path,
    *,
    report: str,
    parameters: Mapping[str, Any],
    now: Any,
    region: str | None,
    calls: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``manifest.json``: what a replay needs to ask the same questions again.

    ``calls`` defaults to the number of lines in ``calls.jsonl``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if calls is None:
        path = directory / CALLS_FILE
        calls = sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else 0
    manifest = {
        "report": report,
        "parameters": dict(parameters),
        "now": isoformat(now),
        "region": region,
        "created": isoformat(utcnow()),
        "calls": calls,
        "evilent_nb_version": __version__,
        **dict(extra or {}),
    }
    out = directory / MANIFEST_FILE
    out.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return out


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of an evidence bundle.

    Raises
    ------
    EvidenceError
        The directory or its manifest is missing or unreadable.
    """
    path = Path(directory) / MANIFEST_FILE
    if not Path(directory).is_dir():
        raise EvidenceError(f"evidence bundle {str(directory)!r} not found")
    if not path.is_file():
        raise EvidenceError(f"{str(directory)!r} is not an evidence bundle: it has no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"evidence manifest {str(path)!r} is unreadable: {exc}") from exc
    for key in ("report", "parameters", "now"):
        if key not in manifest:
            raise EvidenceError(f"evidence manifest {str(path)!r} lacks {key!r}")
    return manifest
