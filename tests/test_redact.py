"""Redaction: each secret kind is caught, ordinary text survives."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from evilent_nb.redact import MASK, is_secret_key, redact, redact_frame, redact_obj, redact_params

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key AKIAIOSFODNN7EXAMPLE in use", "key [REDACTED:aws_access_key_id] in use"),
        ("session ASIAY34FZKBOKMUTVV7A", "session [REDACTED:aws_access_key_id]"),
        (f"aws_secret_access_key = {SECRET}", "aws_secret_access_key = [REDACTED:aws_secret_access_key]"),
        (f"AWS_SECRET_ACCESS_KEY={SECRET}", "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_access_key]"),
        (f'{{"SecretAccessKey": "{SECRET}"}}', '{"SecretAccessKey": "[REDACTED:aws_secret_access_key]"}'),
        ("Authorization: Bearer abc123.def456-ghi", "Authorization: Bearer [REDACTED:token]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED:token]"),
        ("GET /orders?token=abc123&page=2", "GET /orders?token=[REDACTED:token]&page=2"),
        ("api_key=XYZ987 sent", "api_key=[REDACTED:api_key] sent"),
        ("x-api-key: 'q1w2e3r4t5y6'", "x-api-key: '[REDACTED:api_key]'"),
        ("client_secret=s3cr3t", "client_secret=[REDACTED:secret]"),
        (f"jwt {JWT} rejected", "jwt [REDACTED:jwt] rejected"),
        (f"id_token={JWT}", "id_token=[REDACTED:jwt]"),
        (
            "connect postgres://app:s3cr3t@db.abc.eu-central-1.rds.amazonaws.com:5432/users",
            "connect postgres://app:[REDACTED:password]@db.abc.eu-central-1.rds.amazonaws.com:5432/users",
        ),
        ("mongodb+srv://admin:p@ss@cluster0/x", "mongodb+srv://admin:[REDACTED:password]@cluster0/x"),
        (
            "host=db port=5432 user=app password=hunter2 dbname=users",
            "host=db port=5432 user=app password=[REDACTED:password] dbname=users",
        ),
        ("Server=x;Password=abc;Database=y", "Server=x;Password=[REDACTED:password];Database=y"),
        ('{"user": "app", "password": "p w\\"d"}', '{"user": "app", "password": "[REDACTED:password]"}'),
        ("db_password: hunter2", "db_password: [REDACTED:password]"),
        ("welcome mail to jane.doe+shop@example.co.uk failed", "welcome mail to [REDACTED:email] failed"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAA=\n-----END RSA PRIVATE KEY----- done",
            "[REDACTED:private_key] done",
        ),
    ],
)
def test_each_secret_kind_is_caught(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:lambda:eu-central-1:123456789012:function:UserServiceStack-ServiceUserServiceFunction",
        "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/db-1a2b3c",
        "2026-11-27T10:00:00.000Z\t8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b\tERROR\tconnect ETIMEDOUT 10.0.1.23:5432",
        "REPORT RequestId: 8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b\tDuration: 102.25 ms\tMax Memory Used: 78 MB",
        "Invalid token: jwt malformed",
        "Basic authentication failed; bearer token expired",
        "nextToken=f/36871549318426418393947486184587469513848196427206279168/s",
        "max_tokens=1000 retry=3 https://api.example.com/v1/orders?page=2",
        "Root=1-5759e988-bd862e3fe1be46a994272793 sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "",
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert redact(text) == text


STS_TOKEN = "FwoGZXIvYXdzEBYaDHVzZXJzZXNzaW9uIjAQWERTYUIOPASDFGHJKLZXCVBNM1234567890abcdefghijklmnopqrstuv/+=="


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a secret printed bare next to its key id (aws configure list, a debug print)
        (f"creds AKIAIOSFODNN7EXAMPLE {SECRET}", "creds [REDACTED:aws_access_key_id] [REDACTED:aws_secret_access_key]"),
        (f"token {STS_TOKEN} used", "token [REDACTED:token] used"),
        ("X-Amz-Security-Token: IQoJb3JpZ2luX2VjEHYaCWV1LWNlbnRyYWwtMSJHMEUCIQDabc",
         "X-Amz-Security-Token: [REDACTED:token]"),
        ("GET /k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261128&X-Amz-Signature=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
         "GET /k?X-Amz-Credential=[REDACTED:aws_access_key_id]%2F20261128&X-Amz-Signature=[REDACTED:secret]"),
        ("redis://:onlypass@cache:6379/0", "redis://:[REDACTED:password]@cache:6379/0"),
        ("password: 'hunter 2 with spaces' ok", "password: '[REDACTED:password]' ok"),
        ('PGPASSWORD="two words" psql', 'PGPASSWORD="[REDACTED:password]" psql'),
        ("Cookie: session=abcdef123456; csrf=zz9", "Cookie: [REDACTED:cookie]"),
        ('{"cookie": "sid=abc; other=1", "host": "x"}', '{"cookie": "[REDACTED:cookie]", "host": "x"}'),
        ("push with ghp_abcdefghijklmnopqrstuvwxyz0123456789 failed", "push with [REDACTED:token] failed"),
        ("slack xoxb-123456789012-123456789012-abcdefghijklmnop", "slack [REDACTED:token]"),
    ],
)
def test_secrets_that_used_to_leak(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "CodeSha256: qv5Ev6vFMZ2R1bkN/Sxl3e9lHl0vXrjPA9o9eOXiTBU=",  # 44-char base64 digest
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",  # 40 hex, one case
        "UserServiceStack-ServiceUserServiceFunction1A2B3C4D5E6F7G8H9I0Jab",
        "SignatureDoesNotMatch: The request signature we calculated does not match",
        "Invalid token: 'jwt malformed'",
        "cookies disabled in the browser",
    ],
)
def test_lookalikes_survive(text: str) -> None:
    assert redact(text) == text


def test_non_strings_pass_through() -> None:
    assert redact(None) is None
    assert redact(5) == 5
    assert redact(pd.NA) is pd.NA


def test_secret_keys() -> None:
    for key in ("password", "DB_PASSWORD", "apiKey", "X-Api-Key", "client_secret", "SessionToken",
                "Authorization", "private_key", "SecretAccessKey", "dsn"):
        assert is_secret_key(key), key
    for key in ("nextToken", "NextPageToken", "window", "region", "profile", "author", "passenger",
                "monthly_budget_usd", "max_tokens", 3):
        assert not is_secret_key(key), key


def test_redact_params() -> None:
    params = {"window": "24h", "api_key": "abc", "db_password": 1234, "owner": "ops@example.com",
              "retention_days": 30, "apply": False, "token": None}
    assert redact_params(params) == {
        "window": "24h", "api_key": MASK, "db_password": MASK, "owner": "[REDACTED:email]",
        "retention_days": 30, "apply": False, "token": None,
    }
    assert params["api_key"] == "abc"  # input untouched


def test_redact_obj_recursive_and_leaves_scalars() -> None:
    when = datetime(2026, 11, 27, tzinfo=UTC)
    obj = {
        "Functions": [
            {"FunctionName": "UserFn", "MemorySize": 256, "LastModified": when,
             "Environment": {"Variables": {"DB_PASSWORD": "hunter2", "DSN": "postgres://a:b@h/db",
                                           "ADMIN": "root@example.com"}}},
        ],
        "Credentials": {"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": SECRET, "Expiration": when},
        "nextToken": "abc/123",
        "events": ("user a@b.io", 3.5, None, True),
        "LastKey": "ASIAY34FZKBOKMUTVV7A",
    }
    out = redact_obj(obj)
    fn = out["Functions"][0]
    assert fn["FunctionName"] == "UserFn" and fn["MemorySize"] == 256 and fn["LastModified"] is when
    assert fn["Environment"]["Variables"] == {"DB_PASSWORD": MASK, "DSN": MASK, "ADMIN": "[REDACTED:email]"}
    assert out["Credentials"] == {"AccessKeyId": MASK, "SecretAccessKey": MASK,
                                  "Expiration": when}
    assert out["nextToken"] == "abc/123"
    assert out["LastKey"] == "[REDACTED:aws_access_key_id]"
    assert out["events"] == ("user [REDACTED:email]", 3.5, None, True)
    assert obj["Credentials"]["SecretAccessKey"] == SECRET


def test_redact_frame_keeps_dtypes_and_other_columns() -> None:
    df = pd.DataFrame({
        "message": pd.array(["login a@b.io ok", None, "token=abc123"], dtype="string"),
        "request_id": pd.array(["8f5e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"] * 3, dtype="string"),
        "outputs": [{"DbPassword": "x"}, {}, {"Url": "https://u:p@h/"}],
        "n": [1, 2, 3],
    })
    out = redact_frame(df)
    assert out["message"].tolist() == ["login [REDACTED:email] ok", pd.NA, "token=[REDACTED:token]"]
    assert out["request_id"].equals(df["request_id"])
    assert out["outputs"].tolist() == [{"DbPassword": MASK}, {}, {"Url": "https://u:[REDACTED:password]@h/"}]
    assert (out.dtypes == df.dtypes).all()
    assert df["message"].iloc[0] == "login a@b.io ok"
    only = redact_frame(df, columns=["request_id"])
    assert only["message"].iloc[0] == "login a@b.io ok"
