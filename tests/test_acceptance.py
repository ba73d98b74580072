"""Acceptance: `evilent-nb run` on estates, regions and faults the sandbox does not plant.

Each test pins a problem found by running the tool through its contract alone (DESIGN.md,
"Contracts"): an estate with other names in another region, a service with no API, a
throttled discovery call, bad parameters and config, an unwritable output directory,
warnings leaking into the one-line stderr. Most run the gatherers or the runner in this
process (in-process moto); two kernel runs go through the real CLI against a moto server.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse

from evilent_nb import reports
from evilent_nb.aws import get_session
from evilent_nb.cli import main
from evilent_nb.config import load_config
from evilent_nb.exceptions import (
    BadInputError,
    ConfigError,
    DataSourceError,
    ParameterError,
    UnknownServiceError,
    WindowError,
)
from evilent_nb.report import ReportContext, _as_failure, resolve_parameters, run_report
from evilent_nb.rules import check_api_health

WEST = "us-west-2"
ACCOUNT = "123456789012"
CLOSED_URL = "http://127.0.0.1:1/prod"  # nothing listens on port 1: connection refused
ROLE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def _function(name: str) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name, "Runtime": "python3.12", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "def handler(e, c): return 1"},
        },
    }


def _role(name: str) -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {"RoleName": name, "AssumeRolePolicyDocument": ROLE}}


#: Not EVILENT's names: an order service whose API is down, a payment worker with no API,
#: no outputs and two functions.
ORDER = {
    "Resources": {"Role": _role("OrderRole"), "Fn": _function("orders-handler"),
                  "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "OrdersApi"}}},
    "Outputs": {"OrderServiceApiUrl": {"Value": CLOSED_URL}},
}
PAYMENT = {"Resources": {"Role": _role("PayRole"), "Fn": _function("pay-charge"), "Fn2": _function("pay-refund")}}


def seed_west(region: str = WEST, endpoint_url: str | None = None) -> None:
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"} if endpoint_url else {}
    cf = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url, **creds)
    for name, body in (("OrderServiceStack", ORDER), ("PaymentServiceStack", PAYMENT)):
        cf.create_stack(StackName=name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_NAMED_IAM"])


@pytest.fixture
def west() -> Iterator[None]:
    """In-process moto holding the order/payment estate in us-west-2 (and nothing else)."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        seed_west()
        yield


def west_ctx(report: str, **kw) -> ReportContext:
    return ReportContext.open(report, boto3_session=get_session(region=WEST, max_attempts=1), **kw)


def by_check(ctx: ReportContext) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for row in ctx.findings.itertuples():
        out.setdefault(row.check, []).append((row.severity, row.resource))
    return out


# -- a service without an *ApiUrl output -----------------------------------------------------


@pytest.mark.usefixtures("west")
def test_health_probes_only_services_that_have_a_health_url() -> None:
    # Was: the payment worker (no API, no outputs) was probed as None, the probe row's <NA>
    # URL crashed check_api_health (TypeError), and the health report failed (exit 4).
    ctx = west_ctx("health")
    data = reports.gather_health(ctx)
    assert list(data.probes["name"]) == ["order"]
    assert by_check(ctx)["api_health"] == [("P0", "OrdersApi")]
    assert by_check(ctx)["db_status"] == [("P1", "evilent-user-service-db")]  # the runbook's default DB
    assert set(ctx.sources.values()) == {"ok"}
    assert data.services.set_index("service").loc["payment", "functions"] == ["pay-charge", "pay-refund"]


def test_api_health_tolerates_a_probe_without_url() -> None:
    probes = pd.DataFrame({"url": pd.array([None], dtype="string"), "status_code": pd.array([None], dtype="Int64"),
                           "ok": [False], "latency_ms": [float("nan")], "error": ["no health URL"]})
    found = check_api_health(probes, None)
    assert list(found["check"]) == ["api_health"] and list(found["severity"]) == ["P0"]


@pytest.mark.usefixtures("west")
def test_incident_on_a_service_without_api_is_not_called_down() -> None:
    # Was: P0 "/health no health URL: the service is down" for a service that has no API.
    ctx = west_ctx("incident")
    data = reports.gather_incident(ctx, service="PaymentServiceStack")
    assert data.severity == "P3" and data.probes.empty
    ctx = west_ctx("incident")
    assert reports.gather_incident(ctx, service="order").severity == "P0"  # connection refused


# -- a throttled discovery call --------------------------------------------------------------


def _throttle(request, **_):
    if "cloudformation" in request.url or b"Action=" in (request.body or b""):  # the query protocol: XML
        response = AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, None)
        response._content = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                             b"<Message>Rate exceeded</Message></Error></ErrorResponse>")
        return response
    response = AWSResponse(request.url, 400, {"Content-Type": "application/json"}, None)
    response._content = b'{"__type": "Throttling", "message": "Rate exceeded"}'
    return response


@pytest.mark.usefixtures("west")
@pytest.mark.parametrize("operation", ["cloudformation.DescribeStacks", "cloudformation.ListStackResources",
                                       "apigateway.GetRestApis"])
@pytest.mark.parametrize("report", ["health", "maintenance"])
def test_throttled_discovery_is_data_unavailable_not_a_failed_report(operation: str, report: str) -> None:
    # Was: DataSourceError out of ctx.estate, i.e. a failed report (exit 4).
    session = get_session(region=WEST, max_attempts=1)
    session.events.register(f"before-send.*.{operation.split('.')[1]}", _throttle)
    ctx = ReportContext.open(report, boto3_session=session)
    {"health": reports.gather_health, "maintenance": reports.gather_maintenance}[report](ctx)
    unavailable = ctx.findings[ctx.findings["check"] == "data_unavailable"]
    assert list(zip(unavailable["severity"], unavailable["resource"], strict=True)) == [("P2", operation)]
    assert ctx.status != "OK" and ctx.estate.services == []
    assert ctx.estate.db_instances == ["evilent-user-service-db"]  # still judged


@pytest.mark.usefixtures("west")
def test_incident_without_discovery_fails_with_the_throttling_not_an_unknown_service() -> None:
    session = get_session(region=WEST, max_attempts=1)
    session.events.register("before-send.*.DescribeStacks", _throttle)
    with pytest.raises(DataSourceError, match="Throttling"):
        reports.gather_incident(ReportContext.open("incident", boto3_session=session), service="order")


@pytest.mark.usefixtures("west")
def test_stack_states_found_in_another_region() -> None:
    from moto.backends import get_backend

    stacks = get_backend("cloudformation")[ACCOUNT][WEST].stacks.values()
    wanted = {"OrderServiceStack": "UPDATE_ROLLBACK_FAILED", "PaymentServiceStack": "CREATE_IN_PROGRESS"}
    for stack in stacks:
        stack.status = wanted[stack.name]
    ctx = west_ctx("health")
    reports.gather_health(ctx)
    assert sorted(by_check(ctx)["stack_status"]) == [("P1", "OrderServiceStack"), ("P3", "PaymentServiceStack")]


# -- bad input is exit 2 before any kernel ---------------------------------------------------


NOW = "2026-11-28T09:00:00Z"


@pytest.mark.parametrize(
    ("report", "given", "error", "match"),
    [
        ("maintenance", {"retention_days": "31"}, ParameterError, "retention CloudWatch Logs accepts"),
        ("maintenance", {"retention_days": "-5"}, ParameterError, "retention CloudWatch Logs accepts"),
        ("maintenance", {"stale_days": "-1"}, ParameterError, "must not be negative"),
        ("cost", {"monthly_budget_usd": "-10"}, ParameterError, "must not be negative"),
        ("cost", {"window": "12h"}, WindowError, "whole days"),
        ("cost", {"window": "455d"}, WindowError, "Cost Explorer keeps no older data"),
        ("incident", {"service": "x", "start": "2026-11-29T00:00:00Z"}, WindowError, "is in the future"),
    ],
)
def test_values_a_kernel_would_refuse_are_refused_first(report: str, given: dict, error: type, match: str) -> None:
    # Was: retention_days=-5 a ParameterError inside a cell (exit 4); a negative budget or
    # stale_days and a 12h cost window ran; a future start said "end must be after start".
    with pytest.raises(error, match=match):
        resolve_parameters(report, given, now=NOW)


def test_whole_day_windows_in_hours_are_fine_for_cost() -> None:
    assert resolve_parameters("cost", {"window": "48h"}, now=NOW)["window"] == "48h"
    assert resolve_parameters("cost", {"window": "400d"}, now=NOW)["window"] == "400d"
    assert resolve_parameters("maintenance", {"retention_days": "90", "stale_days": "0"}, now=NOW)["retention_days"] == 90


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rulebook:\n  budget:\n    monthly_usd: abc\n", "rulebook.budget.monthly_usd must be a number"),
        ("rulebook:\n  lambda_errors: 5\n", "rulebook.lambda_errors must be a mapping"),
        ("rulebook:\n  stack_status: {P1: '*_FAILED'}\n", "rulebook.stack_status.P1 must be a list"),
    ],
)
def test_a_badly_typed_rulebook_override_is_a_config_error(tmp_path: Path, text: str, match: str) -> None:
    # Was: accepted, then a TypeError/ValueError in a kernel cell (exit 4).
    path = tmp_path / "evilent.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_a_rulebook_override_of_the_right_type_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "evilent.yml"
    path.write_text("rulebook:\n  budget: {monthly_usd: 10}\n  lambda_errors: {p1_above: 50.5}\n")
    cfg = load_config(path)
    assert (cfg.rulebook["budget"]["monthly_usd"], cfg.rulebook["lambda_errors"]["p1_above"]) == (10, 50.5)


def test_bad_input_seen_only_in_a_kernel_is_still_exit_2() -> None:
    class CellError(Exception):
        ename = "ConfigError"
        evalue = "unknown key(s) in services.order: bogus; known: health_url"

    failure = _as_failure("health", CellError(), "out/health.ipynb", 3)
    assert isinstance(failure, ConfigError) and failure.exit_code == 2
    assert "services.order: bogus" in str(failure) and "out/health.ipynb" in str(failure)


# -- the budget from evilent.yml -------------------------------------------------------------


def _cost_result(now: datetime) -> dict:
    days = []
    for back in range(40, -1, -1):
        day = now.date() - timedelta(days=back)
        days.append({
            "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
            "Total": {}, "Estimated": back <= 1,
            "Groups": [{"Keys": [s], "Metrics": {"UnblendedCost": {"Amount": "1.0", "Unit": "USD"}}}
                       for s in ("AWS Lambda", "Amazon RDS")],
        })  # fmt: skip
    return {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}], "ResultsByTime": days,
            "DimensionValueAttributes": []}


def test_an_evilent_yml_budget_changes_the_cost_findings(moto_session, tmp_path: Path) -> None:
    from moto.moto_api._internal import moto_api_backend

    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 2 USD a day: 40 USD so far, 60 forecast
    config = tmp_path / "evilent.yml"
    config.write_text("rulebook:\n  budget: {monthly_usd: 10}\n")
    found = {}
    for name, cfg in (("default", None), ("yml", str(config))):
        moto_api_backend.set_ce_cost_usage(result=_cost_result(now), account_id=ACCOUNT)
        ctx = ReportContext.open("cost", now=now, config=cfg, boto3_session=get_session())
        reports.gather_cost(ctx)
        found[name] = ctx.findings[["severity", "check", "resource", "value", "threshold"]].values.tolist()
    assert found == {"default": [], "yml": [["P3", "monthly_cost", "total", 40.0, 10.0]]}


# -- the output directory --------------------------------------------------------------------


def test_an_unwritable_output_dir_is_one_line_before_any_kernel(moto_session, tmp_path: Path) -> None:
    # Was: a FileExistsError traceback and exit code 1 (which means "a finding at --fail-on").
    not_a_dir = tmp_path / "taken"
    not_a_dir.write_text("")
    with pytest.raises(BadInputError, match=f"cannot write the report to {not_a_dir}"):
        run_report("health", output_dir=not_a_dir)
    code = main(["run", "health", "--output-dir", str(not_a_dir / "sub")])
    assert code == 2


# -- stderr carries one line for codes 2-4 -------------------------------------------------------


def _command(monkeypatch: pytest.MonkeyPatch, behaviour) -> None:
    from evilent_nb import cli

    monkeypatch.setitem(cli._COMMANDS, "list", lambda _args: behaviour())


def test_warnings_do_not_add_lines_to_an_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # Was: discovery's "evilent.yml overrides unknown service(s)" warning printed (through
    # logging's last resort) above the error line of an unknown service: two stderr lines.
    def fails() -> int:
        logging.getLogger("evilent_nb.estate").warning("evilent.yml overrides unknown service(s): ghost")
        raise UnknownServiceError("unknown service 'nope'; known services: order, payment")

    _command(monkeypatch, fails)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == "evilent-nb: error: unknown service 'nope'; known services: order, payment\n"


def test_warnings_follow_a_run_that_worked(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def works() -> int:
        logging.getLogger("evilent_nb.estate").warning("evilent.yml overrides unknown service(s): ghost")
        logging.getLogger("traitlets").warning("Alternative text is missing on 6 image(s).")
        return 0

    _command(monkeypatch, works)
    assert main(["list"]) == 0
    assert capsys.readouterr().err == "evilent-nb: warning: evilent.yml overrides unknown service(s): ghost\n"


def test_an_unexpected_exception_is_one_line_and_exit_4(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("EVILENT_NB_DEBUG", raising=False)

    def bug() -> int:
        raise FileExistsError(17, "File exists")

    _command(monkeypatch, bug)
    assert main(["list"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evilent-nb: error: unexpected failure: FileExistsError")


# -- through the CLI and a kernel, against a moto server -------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A moto server on loopback: us-west-2 holds the order/payment estate, eu-central-1 nothing."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    url = f"http://127.0.0.1:{port}"
    try:
        seed_west(endpoint_url=url)
        yield url
    finally:
        srv.stop()


def cli(*args: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    return subprocess.run([sys.executable, "-m", "evilent_nb.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180, check=False)


def test_cli_on_an_empty_account_and_on_another_estate(server: str, tmp_path: Path) -> None:
    empty, west_dir = tmp_path / "empty" / "nested", tmp_path / "west"
    res = cli("run", "health", "--output-dir", str(empty), endpoint=server)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert f"html     {empty / 'health.html'}" in res.stdout  # where it wrote, for the user
    summary = json.loads((empty / "health.summary.json").read_text())
    assert [(f["check"], f["severity"], f["resource"]) for f in summary["findings"]] == [
        ("db_status", "P1", "evilent-user-service-db")]

    res = cli("run", "health", "-p", "region", WEST, "--fail-on", "P0", "--output-dir", str(west_dir),
              endpoint=server)
    assert res.returncode == 1, res.stderr  # the order API is down: P0
    summary = json.loads((west_dir / "health.summary.json").read_text())
    assert summary["region"] == WEST and summary["status"] == "P0"
    assert [(f["check"], f["service"], f["resource"]) for f in summary["findings"] if f["check"] == "api_health"] == [
        ("api_health", "order", "OrdersApi")]

    res = cli("run", "incident", "-p", "region", WEST, "-p", "service", "shipping", endpoint=server)
    assert res.returncode == 2
    assert res.stderr == "evilent-nb: error: unknown service 'shipping'; known services: order, payment\n"
    res = cli("run", "incident", "-p", "service", "order", endpoint=server)  # eu-central-1 is empty
    assert (res.returncode, res.stderr) == (2, "evilent-nb: error: unknown service 'order'; known services: none\n")


@pytest.mark.usefixtures("west")
def test_the_region_of_evilent_yml_is_used_unless_p_region_says_otherwise(tmp_path: Path) -> None:
    # Was: `region:` was accepted in evilent.yml and then ignored (AWS_DEFAULT_REGION won).
    from evilent_nb.report import _preflight

    config = tmp_path / "evilent.yml"
    config.write_text(f"region: {WEST}\n")
    assert _preflight({"config": str(config)}).region_name == WEST
    assert _preflight({"config": str(config), "region": "eu-central-1"}).region_name == "eu-central-1"
    ctx = ReportContext.open("health", config=str(config))
    assert ctx.session.region_name == WEST and ctx.estate.names == ["order", "payment"]
    assert ReportContext.open("health", config=str(config), region="eu-central-1").estate.names == []


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    # Was: `evilent-nb iam-policy | head -1` could end in a BrokenPipeError traceback.
    proc = subprocess.Popen([sys.executable, "-m", "evilent_nb.cli", "iam-policy"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert (proc.wait(timeout=60), err) == (141, b"")
