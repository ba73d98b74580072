"""The shipped report notebooks, through the real runner (papermill, a kernel), against the sandbox.

The kernel is a separate process: it reaches the sandbox through the environment
variables this process sets (AWS_ENDPOINT_URL, test credentials, region).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import nbformat
import pytest
from conftest import planted

from evilent_nb.report import REPORTS, run_report
from evilent_nb.sandbox import SECRETS, Sandbox

pytestmark = pytest.mark.notebooks

PARAMS = {
    "incident": {"health": {}, "cost": {}, "maintenance": {}, "incident": {"service": "product"}},
    "healthy": {"health": {}, "cost": {}, "maintenance": {}, "incident": {"service": "user"}},
}
SUMMARY_KEYS = {"report", "generated_at", "window", "region", "parameters", "status", "findings", "api_usage"}
FINDING_KEYS = {"severity", "check", "service", "resource", "value", "threshold", "at", "message", "playbook"}


def _notebooks() -> list[Path]:
    root = resources.files("evilent_nb.notebooks")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_are_clean_with_one_parameters_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert nb.cells.index(tagged[0]) <= 2  # near the top
    # thin: one statement (or a call plus finish) per code cell, no loops or defs
    for cell in code:
        if cell is tagged[0]:
            continue
        assert not re.search(r"^\s*(for|while|def|class|if|try)\b", cell.source, re.M), cell.source


def test_every_report_has_its_notebook() -> None:
    shipped = {p.name for p in _notebooks()}
    assert {r.notebook for r in REPORTS.values()} <= shipped


def _expected(scenario: str, report: str) -> set[tuple[str, str, str]]:
    if scenario == "healthy" and report == "incident":
        # an incident report always classifies; the user service's usual ERROR lines are P3
        return {("incident_severity", "user", "P3"),
                ("top_error", "/aws/lambda/UserServiceStack-ServiceUserServiceFunction", "P3")}
    return planted(scenario, report)


@pytest.mark.parametrize("scenario", ["incident", "healthy"])
def test_every_report_runs_against_the_sandbox(scenario: str, tmp_path: Path, monkeypatch) -> None:
    with Sandbox(scenario) as sb:
        for key, value in sb.env.items():
            monkeypatch.setenv(key, value)
        results = {name: run_report(name, params, output_dir=tmp_path, progress_bar=False)
                   for name, params in PARAMS[scenario].items()}

    for name, result in results.items():
        summary = json.loads(Path(result.paths["summary"]).read_text())
        assert SUMMARY_KEYS <= set(summary)
        assert summary["report"] == name and summary["region"] == "eu-central-1"
        assert all(FINDING_KEYS == set(f) for f in summary["findings"])
        got = {(f["check"], f["resource"], f["severity"]) for f in summary["findings"]}
        assert got == _expected(scenario, name), name
        assert summary["status"] == (min((f["severity"] for f in summary["findings"]), default="OK"))
        assert summary["api_usage"]["calls"] and summary["api_usage"]["estimated_cost_usd"] >= 0
        if scenario == "healthy":
            assert summary["status"] in {"OK", "P3"}

        html = Path(result.paths["html"]).read_text()
        assert "ReportContext.open" not in html and "gather_" not in html  # no code cells
        assert 'class="jp-InputPrompt' not in html
        assert html.count("<img") >= (1 if name != "maintenance" else 0)
        executed = Path(result.paths["notebook"]).read_text()
        for secret in SECRETS:
            assert secret not in html, (name, secret)
            assert secret not in executed, (name, secret)
        evidence = Path(result.paths["evidence"])
        assert (evidence / "manifest.json").is_file()
        for secret in SECRETS:
            assert all(secret not in p.read_text() for p in evidence.rglob("*") if p.is_file())

    # one Cost Explorer request; the runner's pre-flight identity check is counted too
    assert results["cost"].summary["api_usage"]["calls"] == {"ce.GetCostAndUsage": 1, "sts.GetCallerIdentity": 1}
    assert results["cost"].summary["api_usage"]["preflight_calls"] == 1
    # the incident's pre-flight also discovered the estate to check the service name
    assert results["incident"].summary["api_usage"]["preflight_calls"] > 1
    if scenario == "incident":
        assert results["health"].status == "P0" and results["incident"].status == "P0"
        # the post-mortem reproduces the incident offline, with no sandbox left
        replay = run_report("incident", output_dir=tmp_path / "replay", progress_bar=False,
                            replay=results["incident"].paths["evidence"])
        assert replay.summary["findings"] == results["incident"].summary["findings"]


def test_committed_notebooks_are_the_generator_output(tmp_path: Path) -> None:
    """tools/make_notebooks.py is where a report's layout changes; the two must not drift."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, str(root / "tools" / "make_notebooks.py"), str(tmp_path)], check=True)
    for made in sorted(tmp_path.glob("*.ipynb")):
        assert made.read_text() == (root / "notebooks" / made.name).read_text(), made.name
    assert len(list(tmp_path.glob("*.ipynb"))) == 4
