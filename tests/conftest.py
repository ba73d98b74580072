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
