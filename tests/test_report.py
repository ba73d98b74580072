"""The runner: parameters from the notebook, validation before any kernel, summaries, HTML."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evilent_nb.exceptions import (
    AccessDeniedError,
    AwsAccessError,
    ConfigError,
    EndpointUnreachableError,
    NoCredentialsError,
    ParameterError,
    ReportExecutionError,
    UnknownReportError,
    WindowError,
)
from evilent_nb.report import (
    INTERNAL_PARAMETERS,
    REPORTS,
    Report,
    ReportContext,
    findings_to_records,
    get_report,
    report_parameters,
    resolve_parameters,
    resolve_window,
    run_report,
)

NOTEBOOKS = Path(__file__).parent / "notebooks"
NOW = "2026-11-28T09:00:00Z"


def fixture(name: str, *, needs_aws: bool = False) -> Report:
    """A report backed by ``tests/notebooks/<name>.ipynb``."""
    return Report(name, NOTEBOOKS / f"{name}.ipynb", f"fixture {name}", needs_aws=needs_aws)


PARAMS = fixture("params")
FINDING = fixture("finding")
RAISES = fixture("raises")


# -- registry and parameters -------------------------------------------------------------


def test_registry_names_the_four_reports() -> None:
    assert list(REPORTS) == ["health", "cost", "incident", "maintenance"]
    assert REPORTS["cost"].notebook == "cost_review.ipynb"
    with pytest.raises(UnknownReportError, match=r"'helth'.*did you mean 'health'"):
        get_report("helth")


def test_parameters_come_from_the_parameters_cell() -> None:
    params = {p.name: p for p in report_parameters(PARAMS)}
    assert list(params) == ["region", "profile", "config", "window", "service", "start", "end",
                            "severity", "retention_days", "apply", "ratio", "tags"]
    assert not set(INTERNAL_PARAMETERS) & set(params)  # internals are hidden
    assert (params["window"].type, params["window"].default) == ("str", "24h")
    assert (params["retention_days"].type, params["retention_days"].default) == ("int", 30)
    assert (params["apply"].type, params["apply"].default) == ("bool", False)
    assert (params["ratio"].type, params["ratio"].default) == ("float", None)  # from the annotation
    assert (params["tags"].type, params["tags"].default) == ("list", ["a"])
    assert params["region"].type == "str" and params["region"].help == "AWS region (default: the boto3 chain)"
    assert params["service"].required and not params["region"].required


def test_cli_strings_are_converted_to_the_declared_types() -> None:
    values = resolve_parameters(
        PARAMS,
        {"service": "user", "retention_days": "14", "apply": "yes", "ratio": "0.25",
         "tags": '["x", "y"]', "severity": "p1"},
        now=NOW,
    )
    assert values == {
        "region": None, "profile": None, "config": None, "window": "24h", "service": "user",
        "start": None, "end": None, "severity": "P1", "retention_days": 14, "apply": True,
        "ratio": 0.25, "tags": ["x", "y"],
    }
    assert resolve_parameters(PARAMS, {"service": "u", "apply": "0", "retention_days": 7}, now=NOW)["apply"] is False


@pytest.mark.parametrize(
    ("given", "error", "match"),
    [
        ({"service": "u", "windw": "24h"}, ParameterError, r"unknown parameter 'windw'.*did you mean 'window'"),
        ({"service": "u", "_now": NOW}, ParameterError, r"'_now'.*internal"),
        ({"service": "u", "retention_days": "two"}, ParameterError, r"'retention_days'.*integer.*'two'"),
        ({"service": "u", "apply": "maybe"}, ParameterError, r"'apply'.*true or false"),
        ({"service": "u", "ratio": "nan"}, ParameterError, r"'ratio'.*number"),
        ({"service": "u", "retention_days": True}, ParameterError, r"'retention_days'.*type int"),
        ({}, ParameterError, r"needs -p service VALUE \(required: a service's short name"),
        ({"service": "u", "window": "24x"}, WindowError, r"bad window '24x'"),
        ({"service": "u", "window": "2026-11-29T00:00:00Z/2026-11-30T00:00:00Z"}, WindowError, "future"),
        ({"service": "u", "start": "yesterday"}, WindowError, r"bad time 'yesterday'"),
        ({"service": "u", "start": "2026-11-28T08:00:00Z", "end": "2026-11-28T07:00:00Z"}, WindowError,
         r"end \(2026-11-28T07:00:00Z\) must be after start"),
        ({"service": "u", "severity": "P5"}, ParameterError, r"one of P0, P1, P2, P3"),
        ({"service": "u", "config": "/no/such/evilent.yml"}, ConfigError, "not found"),
    ],
)
def test_bad_parameters_are_rejected(given: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        resolve_parameters(PARAMS, given, now=NOW)


def test_incident_window_defaults_to_three_hours_before_end() -> None:
    assert resolve_window(now=NOW).to_dict() == {"start": "2026-11-28T06:00:00Z", "end": NOW}
    assert resolve_window(start="2026-11-28T07:30:00Z", now=NOW).to_dict()["start"] == "2026-11-28T07:30:00Z"
    assert resolve_window("7d", now=NOW).to_dict() == {"start": "2026-11-21T09:00:00Z", "end": NOW}


def test_bad_input_starts_no_kernel(tmp_path: Path) -> None:
    t0 = time.monotonic()
    for given in ({"label": "x", "window": "-3h"}, {"label": "x", "nope": "1"}, {}, {"label": "x", "use_aws": "si"}):
        with pytest.raises((ParameterError, WindowError)):
            run_report(FINDING, given, output_dir=tmp_path, progress_bar=False)
    with pytest.raises(UnknownReportError):
        run_report("nonesuch", output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no notebook, no summary, nothing
    assert time.monotonic() - t0 < 3  # a kernel alone takes about a second


def test_aws_preflight_fails_before_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(NoCredentialsError, match="no AWS credentials"):
        run_report(fixture("finding", needs_aws=True), {"label": "x"}, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_aws_failure_supersedes_an_earlier_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduler running into the same dated directory must not read yesterday's OK."""
    rep = fixture("finding", needs_aws=True)
    stale = tmp_path / f"{rep.name}.summary.json"
    stale.write_text(json.dumps({"report": rep.name, "status": "OK", "findings": []}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(EndpointUnreachableError):
        run_report(rep, {"label": "x"}, output_dir=tmp_path)
    summary = json.loads(stale.read_text())
    assert summary["status"] == "ERROR" and "unreachable" in summary["error"]
    assert summary["findings"] == []


# -- findings --------------------------------------------------------------------------


def test_findings_records_have_null_for_missing_and_iso_times() -> None:
    frame = pd.DataFrame([
        {"severity": "P2", "check": "x", "resource": "r", "value": float("nan"), "threshold": 5,
         "at": pd.Timestamp("2026-11-28T03:00:00.7+01:00")},
    ])
    assert findings_to_records(frame) == [{
        "severity": "P2", "check": "x", "service": None, "resource": "r", "value": None,
        "threshold": 5.0, "at": "2026-11-28T02:00:00Z", "message": None, "playbook": None,
    }]
    assert findings_to_records(None) == []


def test_context_collects_findings_most_severe_first(tmp_path: Path) -> None:
    ctx = ReportContext.open("t", now=NOW, result_path=tmp_path / "r.json",
                             parameters={"window": "6h", "api_token": "s3cr3t-value"})
    assert ctx.window("6h").to_dict() == {"start": "2026-11-28T03:00:00Z", "end": NOW}
    ctx.window("1h")  # only the first window is the report's
    ctx.add_findings(pd.DataFrame([{"severity": "P3", "check": "a", "resource": "x"}]))
    ctx.add_findings(pd.DataFrame([{"severity": "P1", "check": "b", "resource": "y"}]))
    ctx.add_findings(None)
    assert ctx.findings.severity.tolist() == ["P1", "P3"] and ctx.status == "P1"
    ctx.finish()
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["window"] == {"start": "2026-11-28T03:00:00Z", "end": NOW}
    assert result["status"] == "P1" and [f["check"] for f in result["findings"]] == ["b", "a"]
    assert result["parameters"]["window"] == "6h" and "s3cr3t" not in json.dumps(result)


# -- running notebooks ------------------------------------------------------------------


def test_run_writes_notebook_html_summary_and_evidence(tmp_path: Path) -> None:
    result = run_report(
        FINDING, {"label": "UserServiceStack", "window": "6h", "dsn": "postgresql://app:hunter2@db:5432/evilent"},
        output_dir=tmp_path, fail_on="P1", progress_bar=False,
    )
    assert (result.exit_code, result.status) == (1, "P1")  # a P1 finding is at or above P1
    summary = json.loads((tmp_path / "finding.summary.json").read_text())
    assert summary == result.summary
    assert list(summary) == ["report", "generated_at", "window", "region", "parameters", "status",
                             "findings", "api_usage"]
    now = summary["generated_at"]
    assert summary["report"] == "finding" and summary["status"] == "P1"
    assert summary["window"]["end"] == now and pd.Timestamp(now) - pd.Timestamp(summary["window"]["start"]) == pd.Timedelta("6h")
    assert summary["findings"] == [{
        "severity": "P1", "check": "planted", "service": "fixture", "resource": "UserServiceStack",
        "value": 12.5, "threshold": None, "at": now, "message": "planted P1 finding on UserServiceStack",
        "playbook": "api-down",
    }]
    assert summary["parameters"]["window"] == "6h" and summary["parameters"]["label"] == "UserServiceStack"
    assert "hunter2" not in (tmp_path / "finding.summary.json").read_text()
    assert summary["api_usage"]["calls"] == {}

    # The kernel is this interpreter, with the agg backend.
    nb = nbformat.read(tmp_path / "finding.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"interpreter: {sys.executable}\n" in printed and "mplbackend: agg" in printed

    html = (tmp_path / "finding.html").read_text()
    assert "data:image/png;base64," in html  # the figure is embedded
    assert "ReportContext.open" not in html and "ax.set_title" not in html  # no code
    assert "In&nbsp;[" not in html and 'class="jp-InputPrompt' not in html

    manifest = json.loads((tmp_path / "finding.evidence" / "manifest.json").read_text())
    assert manifest["now"] == now and manifest["report"] == "finding" and manifest["calls"] == 0
    assert manifest["parameters"]["label"] == "UserServiceStack" and "hunter2" not in json.dumps(manifest)
    assert (tmp_path / "finding.evidence" / "frames" / "probes.json").is_file()

    # Without --fail-on the same findings exit 0; P0 is not reached by a P1.
    again = run_report(FINDING, {"label": "x", "severity": "P2"}, output_dir=tmp_path, fail_on="P1", progress_bar=False)
    assert (again.exit_code, again.status) == (0, "P2")


def test_failing_cell_is_exit_4_with_an_error_summary(tmp_path: Path) -> None:
    (tmp_path / "raises.summary.json").write_text('{"status": "OK"}')  # an earlier run's
    with pytest.raises(ReportExecutionError) as info:
        run_report(RAISES, output_dir=tmp_path, progress_bar=False)
    err = info.value
    assert err.exit_code == 4 and err.cell_index == 3  # index in tests/notebooks/raises.ipynb
    assert str(err) == (
        "report 'raises' failed in cell 3: ValueError: boom: the fixture fails here "
        f"(executed notebook kept at {tmp_path / 'raises.ipynb'})"
    )
    summary = json.loads((tmp_path / "raises.summary.json").read_text())
    assert summary["status"] == "ERROR" and summary["error"] == str(err) and summary["findings"] == []
    kept = nbformat.read(tmp_path / "raises.ipynb", as_version=4)
    assert any(o.get("ename") == "ValueError" for c in kept.cells if c.cell_type == "code" for o in c.outputs)
    assert "boom: the fixture fails here" in (tmp_path / "raises.html").read_text()


def test_aws_access_lost_inside_the_report_is_exit_3(tmp_path: Path) -> None:
    with pytest.raises(AccessDeniedError) as info:
        run_report(RAISES, {"error": "AccessDeniedError"}, output_dir=tmp_path, progress_bar=False)
    assert info.value.exit_code == 3
    assert str(info.value).startswith("report 'raises' could not use AWS in cell 3: boom: the fixture fails here")
    assert json.loads((tmp_path / "raises.summary.json").read_text())["status"] == "ERROR"


def test_a_notebook_that_never_finishes_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(ReportExecutionError, match=r"ended without calling ctx\.finish\(\)"):
        run_report(FINDING, {"label": "x", "finish": "false"}, output_dir=tmp_path, progress_bar=False)
    summary = json.loads((tmp_path / "finding.summary.json").read_text())
    assert summary["status"] == "ERROR"


def test_s3_output_dir_goes_through_papermill_io(moto_session, tmp_path: Path) -> None:
    from evilent_nb.aws import client

    s3 = client("s3", moto_session)
    s3.create_bucket(Bucket="reports", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    result = run_report(FINDING, {"label": "x"}, output_dir="s3://reports/daily", progress_bar=False)
    assert result.paths["summary"] == "s3://reports/daily/finding.summary.json"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="reports")["Contents"])
    assert keys == ["daily/finding.evidence/frames/probes.json", "daily/finding.evidence/manifest.json",
                    "daily/finding.html", "daily/finding.ipynb", "daily/finding.summary.json"]
    body = s3.get_object(Bucket="reports", Key="daily/finding.summary.json")["Body"].read()
    assert json.loads(body) == result.summary
    with pytest.raises(AwsAccessError, match="cannot write the report to s3://missing-bucket/x"):
        run_report(FINDING, {"label": "x"}, output_dir="s3://missing-bucket/x", progress_bar=False)
