"""Evidence: record AWS answers through botocore events, replay them with no network."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from evilent_nb.aws import client, get_session, translate_errors, usage
from evilent_nb.evidence import (
    Recorder,
    Replayer,
    read_frame,
    read_manifest,
    write_frame,
    write_manifest,
)
from evilent_nb.exceptions import DataSourceError, EvidenceError
from evilent_nb.frames import typed_frame
from evilent_nb.report import Report, run_report

REGION = "eu-central-1"
NOTEBOOKS = Path(__file__).parent / "notebooks"
TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials and an endpoint where nothing listens: any real request would fail."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")


def _workload(session) -> dict:
    """A few reads, one paginated over three pages, one failing."""
    logs = client("logs", session)
    groups = [g["logGroupName"] for page in logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 1}) for g in page["logGroups"]]
    events = logs.filter_log_events(logGroupName="/aws/lambda/a")["events"]
    stacks = client("cloudformation", session).describe_stacks()["Stacks"]
    try:
        with translate_errors("cloudformation.DescribeStacks"):
            client("cloudformation", session).describe_stacks(StackName="Missing")
        error = None
    except DataSourceError as exc:
        error = str(exc)
    return {
        "groups": groups,
        "messages": [e["message"] for e in events],
        "stacks": [(s["StackName"], s["CreationTime"]) for s in stacks],
        "error": error,
    }


@pytest.fixture
def recorded(moto_session, tmp_path: Path) -> tuple[Path, dict, dict]:
    """Seed moto, then run the workload through a recording session."""
    logs = client("logs", moto_session)
    for name in ("/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c"):
        logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName="/aws/lambda/a", logStreamName="s")
    now_ms = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    logs.put_log_events(logGroupName="/aws/lambda/a", logStreamName="s", logEvents=[
        {"timestamp": now_ms, "message": "ERROR login failed for ops@example.com password=hunter2"},
    ])
    client("cloudformation", moto_session).create_stack(StackName="UserServiceStack", TemplateBody=TEMPLATE)

    session = get_session(region=REGION)
    Recorder(tmp_path / "ev").attach(session)
    seen = _workload(session)
    return tmp_path / "ev", seen, usage(session).to_dict()


def test_replay_gives_the_same_answers_with_no_network(recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle, seen, used = recorded
    assert seen["groups"] == ["/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c"]
    assert seen["error"].startswith("cloudformation.DescribeStacks: ValidationError")
    lines = (bundle / "calls.jsonl").read_text().splitlines()
    assert len(lines) == 3 + 1 + 1 + 1  # three pages, one filter, two DescribeStacks

    _offline(monkeypatch)
    session = get_session(region=REGION, require_credentials=False)
    Replayer(bundle).attach(session)
    replayed = _workload(session)
    # Redaction happened at recording, so the replayed log line is the redacted one.
    assert replayed["messages"] == ["ERROR login failed for [REDACTED:email] password=[REDACTED:password]"]
    assert {**replayed, "messages": None} == {**seen, "messages": None}
    assert usage(session).to_dict() == used  # the same calls are counted


def test_bundle_holds_no_secrets_and_no_response_metadata(recorded) -> None:
    bundle, _, _ = recorded
    text = (bundle / "calls.jsonl").read_text()
    assert "hunter2" not in text and "ops@example.com" not in text
    assert "ResponseMetadata" not in text
    first = json.loads(text.splitlines()[0])
    assert (first["service"], first["operation"], first["status"]) == ("logs", "DescribeLogGroups", 200)
    assert first["params"] == {"limit": 1}
    created = json.loads(text.splitlines()[4])["response"]["Stacks"][0]["CreationTime"]
    assert list(created) == ["__datetime__"]


def test_an_unrecorded_call_is_an_evidence_error(recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle, _, _ = recorded
    _offline(monkeypatch)
    session = get_session(region=REGION, require_credentials=False)
    Replayer(bundle).attach(session)
    with pytest.raises(EvidenceError, match=r"no recorded answer .* for logs\.DescribeLogStreams \{\"logGroupName\": \"/aws/lambda/b\"\}"):
        client("logs", session).describe_log_streams(logGroupName="/aws/lambda/b")


def test_identical_calls_get_their_answers_in_order(moto_session, tmp_path: Path, monkeypatch) -> None:
    session = get_session(region=REGION)
    Recorder(tmp_path).attach(session)
    cfn = client("cloudformation", session)
    before = cfn.describe_stacks()["Stacks"]
    client("cloudformation", moto_session).create_stack(StackName="A", TemplateBody=TEMPLATE)
    after = cfn.describe_stacks()["Stacks"]
    assert (len(before), len(after)) == (0, 1)

    _offline(monkeypatch)
    replay = get_session(region=REGION, require_credentials=False)
    Replayer(tmp_path).attach(replay)
    cfn = client("cloudformation", replay)
    # first, second, then the last answer again once the recorded ones run out
    assert [len(cfn.describe_stacks()["Stacks"]) for _ in range(3)] == [0, 1, 1]


def test_frames_keep_their_dtypes(tmp_path: Path) -> None:
    frame = typed_frame(
        [{"url": "https://u:pw@api.example.com/health", "status_code": 200, "ok": True, "latency_ms": 12.25},
         {"url": "https://b.example.com/health", "status_code": None, "ok": False, "error": "timed out"}],
        "probes",
    ).assign(at=pd.to_datetime(["2026-11-28T09:00:00Z", None], utc=True).astype("datetime64[ns, UTC]"))
    write_frame(tmp_path, "probes", frame)
    back = read_frame(tmp_path, "probes")
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    assert back.url[0] == "https://u:[REDACTED:password]@api.example.com/health"
    pd.testing.assert_frame_equal(back.drop(columns="url"), frame.drop(columns="url"))
    write_frame(tmp_path, "meta", {"when": pd.Timestamp("2026-11-28T09:00:00Z").to_pydatetime(), "n": 3})
    assert read_frame(tmp_path, "meta")["n"] == 3
    with pytest.raises(EvidenceError, match="no recorded data 'nope'"):
        read_frame(tmp_path, "nope")


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    (tmp_path / "calls.jsonl").write_text("{}\n{}\n")
    write_manifest(tmp_path, report="health", parameters={"window": "24h"}, now="2026-11-28T09:00:00+00:00",
                   region=REGION)
    manifest = read_manifest(tmp_path)
    assert {k: manifest[k] for k in ("report", "parameters", "now", "region", "calls")} == {
        "report": "health", "parameters": {"window": "24h"}, "now": "2026-11-28T09:00:00Z",
        "region": REGION, "calls": 2,
    }
    with pytest.raises(EvidenceError, match="not found"):
        read_manifest(tmp_path / "missing")
    with pytest.raises(EvidenceError, match="has no manifest.json"):
        read_manifest(tmp_path.parent)


# -- end to end: a kernel against a moto server, then a replay with nothing -------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_replay_of_a_run_gives_identical_findings(moto_server: str, tmp_path: Path, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_server).create_stack(
        StackName="EvidenceServiceStack", TemplateBody=TEMPLATE)
    report = Report("finding", NOTEBOOKS / "finding.ipynb", "fixture", needs_aws=True)
    first = run_report(report, {"label": "api", "use_aws": "true", "severity": "P0"},
                       output_dir=tmp_path / "rec", progress_bar=False)
    checks = [(f["severity"], f["check"], f["resource"]) for f in first.summary["findings"]]
    assert ("P0", "planted", "api") in checks
    assert ("P2", "data_unavailable", "cloudformation.DescribeStacks(MissingStack)") in checks
    assert ("P3", "stack_seen", "EvidenceServiceStack") in checks
    assert first.summary["region"] == REGION
    assert first.summary["api_usage"]["calls"]["cloudformation.DescribeStacks"] >= 2
    bundle = tmp_path / "rec" / "finding.evidence"
    assert read_manifest(bundle)["calls"] >= 2

    _offline(monkeypatch)
    second = run_report(report, replay=bundle, output_dir=tmp_path / "replay", progress_bar=False)
    for key in ("generated_at", "window", "region", "parameters", "status", "findings", "api_usage"):
        assert second.summary[key] == first.summary[key], key
    assert (tmp_path / "replay" / "finding.evidence" / "calls.jsonl").is_file()  # the bundle travels along

    with pytest.raises(EvidenceError, match="recorded by report 'finding', not 'raises'"):
        run_report(Report("raises", NOTEBOOKS / "raises.ipynb", "x"), replay=bundle, output_dir=tmp_path / "x")
