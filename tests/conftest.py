"""Shared fixtures: fake credentials, in-process moto, Stubber examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "eu-central-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with fake credentials, one region, and no real AWS configuration."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN",
                "AWS_SECURITY_TOKEN", "EVILENT_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(FIXTURES / "no-such-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(FIXTURES / "no-such-aws-credentials"))
    monkeypatch.setenv("MPLBACKEND", "agg")


@pytest.fixture
def moto_session():
    """A checked, instrumented boto3 session inside in-process moto (``mock_aws``)."""
    from moto import mock_aws

    from evilent_nb.aws import get_session

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield get_session(region=REGION)


@pytest.fixture
def session():
    """A checked, instrumented boto3 session for Stubber tests (never reaches the network)."""
    from evilent_nb.aws import get_session

    return get_session(region=REGION)


def aws_example(name: str) -> dict[str, Any]:
    """An AWS-shaped response from ``tests/fixtures/aws-examples/<name>.json``."""
    return json.loads((FIXTURES / "aws-examples" / f"{name}.json").read_text())


# Which report judges each check (DESIGN.md, "Checks and severities").
REPORT_OF = {
    "api_health": "health", "stack_status": "health", "lambda_errors": "health",
    "lambda_duration": "health", "lambda_invocations": "health", "lambda_throttles": "health",
    "apigw_5xx_rate": "health", "log_errors": "health", "db_status": "health", "alarm_state": "health",
    "monthly_cost": "cost", "cost_anomaly": "cost",
    "log_retention": "maintenance", "stale_log_streams": "maintenance", "unused_policy": "maintenance",
    "db_backup_age": "maintenance", "deprecated_runtime": "maintenance", "missing_alarm": "maintenance",
    "incident_severity": "incident", "suspected_trigger": "incident", "top_error": "incident",
}


def planted(scenario: str, report: str) -> set[tuple[str, str, str]]:
    """``(check, resource, severity)`` a sandbox scenario declares for one report."""
    from evilent_nb.sandbox import get_scenario

    return {(p.check, p.resource, p.severity) for p in get_scenario(scenario).planted
            if REPORT_OF[p.check] == report}
