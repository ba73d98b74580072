"""The AWS factory, config loading, typed frames and the public surface."""

from __future__ import annotations

import textwrap
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

import evilent_nb
from evilent_nb import aws
from evilent_nb.config import load_config
from evilent_nb.exceptions import (
    AccessDeniedError,
    ConfigError,
    DataSourceError,
    EndpointUnreachableError,
    EvilentNbError,
    NoCredentialsError,
    NoRegionError,
)
from evilent_nb.frames import SCHEMAS, snake, typed_frame


def test_public_names_match_all() -> None:
    exported = {n for n in dir(evilent_nb) if not n.startswith("_") and n != "annotations"}
    modules = {n for n in exported if type(getattr(evilent_nb, n)).__name__ == "module"}
    assert set(evilent_nb.__all__) - {"__version__"} == exported - modules
    for name in evilent_nb.__all__:
        assert hasattr(evilent_nb, name)


def test_every_error_is_rooted_and_one_line() -> None:
    for name in evilent_nb.exceptions.__all__:
        cls = getattr(evilent_nb.exceptions, name)
        assert issubclass(cls, EvilentNbError)
    assert NoRegionError.exit_code == 3 and ConfigError.exit_code == 2


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(NoRegionError, match="AWS_DEFAULT_REGION.*make demo"):
        aws.get_session()


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(NoCredentialsError, match="make demo"):
        aws.get_session(region="eu-central-1")
    # a replay needs none
    assert aws.get_session(region="eu-central-1", require_credentials=False).region_name == "eu-central-1"


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(NoCredentialsError, match="profile 'nope' not found"):
        aws.get_session(profile="nope", region="eu-central-1")


def test_client_config_and_cost_explorer_region() -> None:
    s = aws.get_session(region="eu-central-1", max_attempts=7)
    cw = aws.client("cloudwatch", s)
    assert cw is aws.client("cloudwatch", s)  # cached per session
    assert cw.meta.region_name == "eu-central-1"
    assert cw.meta.config.retries["mode"] == "standard"
    assert cw.meta.config.retries["total_max_attempts"] == 7
    assert f"evilent-nb/{evilent_nb.__version__}" in cw.meta.config.user_agent_extra
    ce = aws.client("ce", s)
    assert ce.meta.region_name in {"us-east-1", "aws-global"}  # botocore names CE's global endpoint
    assert "us-east-1" in ce.meta.endpoint_url


def test_endpoint_comes_from_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    s = aws.get_session(region="eu-central-1")
    assert aws.client("logs", s).meta.endpoint_url == "http://127.0.0.1:1"


def test_usage_counts_calls_and_prices_them() -> None:
    s = aws.get_session(region="eu-central-1")
    cw = aws.client("cloudwatch", s)
    ce = aws.client("ce", s)
    with Stubber(cw) as cw_stub, Stubber(ce) as ce_stub:
        cw_stub.add_response("get_metric_data", {"MetricDataResults": []})
        ce_stub.add_response("get_cost_and_usage", {"ResultsByTime": []})
        ce_stub.add_response("get_cost_and_usage", {"ResultsByTime": []})
        queries = [
            {"Id": f"m{i}", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors"},
                                            "Period": 3600, "Stat": "Sum"}}
            for i in range(300)
        ]
        cw.get_metric_data(MetricDataQueries=queries, StartTime="2026-11-27", EndTime="2026-11-28")
        for _ in range(2):
            ce.get_cost_and_usage(TimePeriod={"Start": "2026-11-01", "End": "2026-11-28"},
                                  Granularity="DAILY", Metrics=["UnblendedCost"])
    u = aws.usage(s).to_dict()
    assert u["calls"] == {"ce.GetCostAndUsage": 2, "cloudwatch.GetMetricData": 1}
    assert u["metrics_requested"] == 300
    # 2 CE requests at 0.01 + 300 metrics at 0.01 / 1000
    assert u["estimated_cost_usd"] == pytest.approx(0.023)


def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")


def test_translate_errors_maps_access_and_source_failures() -> None:
    from botocore.exceptions import EndpointConnectionError

    with pytest.raises(AccessDeniedError, match="iam-policy"), aws.translate_errors("logs.FilterLogEvents"):
        raise _client_error("AccessDeniedException")
    with pytest.raises(EndpointUnreachableError), aws.translate_errors("cloudwatch.GetMetricData"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with pytest.raises(DataSourceError) as info, aws.translate_errors("ce.GetCostAndUsage"):
        raise _client_error("LimitExceededException")
    assert info.value.source == "ce.GetCostAndUsage"
    assert "LimitExceededException" in str(info.value)


def test_given_session_is_used_as_is() -> None:
    s = boto3.Session(region_name="us-west-2")
    assert aws.client("lambda", s).meta.region_name == "us-west-2"
    assert aws.usage(s).total_calls == 0


def test_config_defaults_are_the_runbook() -> None:
    cfg = load_config()
    assert cfg.db_instances == ["evilent-user-service-db"]
    assert cfg.backup_bucket == "evilent-backups"
    assert cfg.rulebook["lambda_errors"] == {"period_s": 3600, "p1_above": 100, "p2_above": 10}
    assert cfg.rulebook["budget"]["monthly_usd"] == 100


def test_config_overrides_merge(tmp_path: Path) -> None:
    p = tmp_path / "evilent.yml"
    p.write_text(textwrap.dedent("""
        db_instances: [orders-db]
        backup_bucket: other-backups
        rulebook:
          budget: {monthly_usd: 250}
          lambda_errors: {p2_above: 20}
    """))
    cfg = load_config(p)
    assert cfg.db_instances == ["orders-db"]
    assert cfg.rulebook["budget"]["monthly_usd"] == 250
    assert cfg.rulebook["lambda_errors"] == {"period_s": 3600, "p1_above": 100, "p2_above": 20}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rulebook: {lambda_errs: {p1_above: 1}}", "unknown rulebook key rulebook.lambda_errs"),
        ("dbinstances: [x]", "unknown key(s)"),
        ("db_instances: 3", "list of strings"),
        ("[1, 2]", "must hold a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_config_is_bad_input(tmp_path: Path, text: str, fragment: str) -> None:
    p = tmp_path / "evilent.yml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert fragment in str(info.value)
    assert info.value.exit_code == 2


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/evilent.yml")


def test_typed_frame_empty_and_filled() -> None:
    empty = typed_frame([], "findings")
    assert list(empty.columns) == list(SCHEMAS["findings"])
    assert str(empty["at"].dtype) == "datetime64[ns, UTC]"
    df = typed_frame(
        [{"url": "http://x/health", "status_code": 200, "ok": True, "latency_ms": "12.5"}], "probes"
    )
    assert df.loc[0, "latency_ms"] == 12.5
    assert df["status_code"].dtype == "Int64"
    assert pd.isna(df.loc[0, "error"])
    extra = typed_frame([{"value": 1, "function_name": "f"}], "metrics", extra={"function_name": "string"})
    assert list(extra.columns)[-1] == "function_name"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("FunctionName", "function_name"), ("ApiName", "api_name"),
     ("DBInstanceIdentifier", "db_instance_identifier"), ("SERVICE", "service")],
)
def test_snake(name: str, expected: str) -> None:
    assert snake(name) == expected


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "MissingAuthenticationToken", "IncompleteSignature"])
def test_more_access_codes_are_access_denied(code: str) -> None:
    with pytest.raises(AccessDeniedError), aws.translate_errors("s3.ListObjectsV2"):
        raise _client_error(code)


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired", "RequestTimeTooSkewed"])
def test_expired_credentials_say_refresh_not_grant(code: str) -> None:
    """Exit 3 either way, but the one line must point at the credentials, not the policy."""
    with pytest.raises(NoCredentialsError, match="refresh") as info, aws.translate_errors("lambda.ListFunctions"):
        raise _client_error(code)
    assert "iam-policy" not in str(info.value) and code in str(info.value)


def test_an_expired_sso_login_is_a_credentials_error_not_a_data_source_failure() -> None:
    """SSO credentials load lazily: the expiry surfaces at the first call, as a BotoCoreError."""
    from botocore.exceptions import (
        CredentialRetrievalError,
        TokenRetrievalError,
        UnauthorizedSSOTokenError,
    )

    errors = [
        TokenRetrievalError(provider="sso", error_msg="Token has expired and refresh failed"),
        UnauthorizedSSOTokenError(),
        CredentialRetrievalError(provider="custom-process", error_msg="exit 1"),
    ]
    for exc in errors:
        with pytest.raises(NoCredentialsError, match="sso login"), aws.translate_errors("cloudwatch.GetMetricData"):
            raise exc
