"""The command line: exit codes, one-line errors, list and iam-policy.

The four report names point at the fixture notebooks through ``$EVILENT_NB_NOTEBOOK_DIR``:
``health`` and ``maintenance`` plant a finding (``finding.ipynb``), ``incident`` has every
kind of parameter (``params.ipynb``) and ``cost`` raises (``raises.ipynb``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evilent_nb.cli import main
from evilent_nb.evidence import write_manifest
from evilent_nb.iam import MAINTENANCE_WRITE_ACTIONS, READ_ACTIONS
from evilent_nb.report import NOTEBOOK_DIR_ENV

NOTEBOOKS = Path(__file__).parent / "notebooks"
REGION = "eu-central-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    for report, fixture in {"health.ipynb": "finding", "maintenance.ipynb": "finding",
                            "incident.ipynb": "params", "cost_review.ipynb": "raises"}.items():
        shutil.copy(NOTEBOOKS / f"{fixture}.ipynb", out / report)
    return out


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("cloudformation", region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_stack(
        StackName="UserServiceStack",
        TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
    )
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def env(notebook_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NOTEBOOK_DIR_ENV, str(notebook_dir))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m evilent_nb.cli ARGS`` in a fresh process (the environment is inherited)."""
    return subprocess.run([sys.executable, "-m", "evilent_nb.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def run_main(args: list[str]) -> int:
    """``main(args)``, with argparse's own exit turned into a return code."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code or 0)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("evilent-nb: error: ") and "Traceback" not in stderr
    return lines[0]


# -- bad input: exit 2, before any kernel ------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_bad_input_in_a_fresh_process(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = cli("run", "helth", "--output-dir", str(out))
    assert res.returncode == 2
    assert one_error_line(res.stderr) == (
        "evilent-nb: error: unknown report 'helth' (did you mean 'health'?); "
        "reports: health, cost, incident, maintenance"
    )
    res = cli("run", "health", "-p", "label", "x", "-p", "window", "3 days", "--output-dir", str(out))
    assert res.returncode == 2 and "bad window '3 days'" in one_error_line(res.stderr)
    assert not out.exists()


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "incident", "-p", "service", "user", "-p", "retention", "7"],
         "unknown parameter 'retention' for report 'incident' (did you mean 'retention_days'"),
        (["run", "incident", "-p", "service", "user", "-p", "retention_days", "a week"],
         "parameter 'retention_days' of report 'incident' must be an integer, got 'a week'"),
        (["run", "incident", "-p", "service", "user", "-p", "apply", "perhaps"], "must be true or false"),
        (["run", "incident", "-p", "service", "user", "-p", "start", "2026-13-01"], "bad time '2026-13-01'"),
        (["run", "incident"], "report 'incident' needs -p service VALUE"),
        (["run", "incident", "-p", "service", "a", "-p", "service", "b"], "parameter 'service' given twice"),
        (["run", "incident", "-p", "service", "a", "-p", "_replay", "true"], "internal and cannot be set"),
        (["run", "health", "--fail-on", "P9"], "argument --fail-on: must be one of P0, P1, P2, P3"),
        (["run"], "the following arguments are required: REPORT"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_each_bad_input_class_is_exit_2_with_one_line(args, message, tmp_path, capsys) -> None:
    if args[0] == "run" and len(args) > 1:
        args = [*args, "--output-dir", str(tmp_path / "out")]
    assert run_main(args) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # nothing written, no kernel started


@pytest.mark.usefixtures("env")
def test_unknown_service_is_exit_2_after_discovery(moto_server, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    code = main(["run", "incident", "-p", "service", "prodcut", "--output-dir", str(tmp_path)])
    assert code == 2
    assert one_error_line(capsys.readouterr().err) == (
        "evilent-nb: error: unknown service 'prodcut'; known services: user"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("env")
def test_replay_takes_no_parameters(tmp_path, capsys) -> None:
    write_manifest(tmp_path / "health.evidence", report="health", parameters={"label": "x"},
                   now="2026-11-28T09:00:00Z", region=REGION)
    code = main(["run", "health", "--replay", str(tmp_path / "health.evidence"), "-p", "label", "y"])
    assert code == 2 and "--replay re-runs with the recorded parameters" in one_error_line(capsys.readouterr().err)
    code = main(["run", "health", "--replay", str(tmp_path / "nowhere")])
    assert code == 2 and "evidence bundle" in one_error_line(capsys.readouterr().err)


# -- AWS unusable: exit 3, before any kernel -------------------------------------------------


@pytest.mark.usefixtures("env")
def test_unreachable_endpoint_is_exit_3(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    res = cli("run", "health", "-p", "label", "x", "--output-dir", str(tmp_path))
    assert res.returncode == 3
    assert "AWS endpoint unreachable (sts.GetCallerIdentity)" in one_error_line(res.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("env")
def test_no_credentials_is_exit_3(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["run", "health", "-p", "label", "x", "--output-dir", str(tmp_path)]) == 3
    assert "no AWS credentials found" in one_error_line(capsys.readouterr().err)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert main(["run", "health", "-p", "label", "x", "--output-dir", str(tmp_path)]) == 3
    assert "no AWS region configured" in one_error_line(capsys.readouterr().err)


# -- running: exit 1 with --fail-on, exit 4 when a cell fails ---------------------------------------


@pytest.mark.usefixtures("env")
def test_fail_on_is_exit_1(moto_server, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    res = cli("run", "health", "-p", "label", "UserServiceStack", "-p", "severity", "P1", "--fail-on", "P1",
              "--output-dir", str(tmp_path))
    assert res.returncode == 1, res.stderr
    assert res.stdout.splitlines()[0] == "health: P1 (1 P1)"
    assert "Traceback" not in res.stderr
    summary = json.loads((tmp_path / "health.summary.json").read_text())
    assert summary["status"] == "P1" and summary["region"] == REGION
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "health.evidence", "health.html", "health.ipynb", "health.summary.json"]


@pytest.mark.usefixtures("env")
def test_failing_cell_is_exit_4(moto_server, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    res = cli("run", "cost", "--output-dir", str(tmp_path))
    assert res.returncode == 4
    assert one_error_line(res.stderr) == (
        "evilent-nb: error: report 'cost' failed in cell 3: ValueError: boom: the fixture fails here "
        f"(executed notebook kept at {tmp_path / 'cost.ipynb'})"
    )
    assert json.loads((tmp_path / "cost.summary.json").read_text())["status"] == "ERROR"


def test_default_output_dir_is_reports_utc_date(env, moto_server, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "maintenance", "-p", "label", "x", "-p", "severity", "P3"]) == 0
    out = capsys.readouterr().out
    day = json.loads(next(tmp_path.glob("reports/*/maintenance.summary.json")).read_text())["generated_at"][:10]
    assert out.splitlines()[0] == "maintenance: P3 (1 P3)"
    assert (tmp_path / "reports" / day / "maintenance.html").is_file()


# -- list and iam-policy --------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_list_shows_every_report_and_public_parameter(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")] == [
        "health", "cost", "incident", "maintenance"]
    assert "  service         str    (required)  required: a service's short name or stack name" in out
    assert "  retention_days  int    30          days to keep log events" in out
    assert "  window          str    \"24h\"" in out
    assert "_now" not in out and "_result_path" not in out


def test_iam_policy_is_read_only_unless_asked(capsys) -> None:
    assert main(["iam-policy"]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert [s["Sid"] for s in policy["Statement"]] == ["EvilentNbReportsReadOnly", "EvilentNbListRestApis"]
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == sorted(READ_ACTIONS) and "sts:GetCallerIdentity" in actions
    # API Gateway reads are scoped to the REST API list (GET on * would reveal API keys)
    assert policy["Statement"][1]["Resource"] == ["arn:aws:apigateway:*::/restapis"]
    assert not any(a.split(":")[1].startswith(("Put", "Delete", "Create", "Update")) for a in actions)
    assert main(["iam-policy", "--with-maintenance-writes"]) == 0
    both = json.loads(capsys.readouterr().out)["Statement"]
    assert both[-1]["Action"] == sorted(MAINTENANCE_WRITE_ACTIONS) == [
        "cloudwatch:PutMetricAlarm", "logs:DeleteLogStream", "logs:PutRetentionPolicy"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("evilent-nb")
    if not script.exists():
        pytest.skip("evilent-nb console script not installed in this environment")
    res = subprocess.run([str(script), "iam-policy"], capture_output=True, text=True, timeout=60,
                         env={**os.environ}, check=False)
    assert res.returncode == 0 and json.loads(res.stdout)["Version"] == "2012-10-17"


@pytest.mark.parametrize("command", [["demo"], ["sandbox"]])
def test_sandbox_commands_without_moto_say_how_to_install_it(command, monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moto" else real(name, *a))
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evilent-nb: error: the sandbox needs moto: pip install 'evilent-nb[sandbox]' (make demo installs it)"]
