"""Each report's gatherer against the sandbox: exactly what the scenario planted.

The gatherers run in this process (no kernel), through a real ReportContext, reaching
the sandbox only through the standard environment variables.
"""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse
from conftest import planted

from evilent_nb import reports
from evilent_nb.aws import get_session
from evilent_nb.report import ReportContext
from evilent_nb.sandbox import SECRETS, Sandbox, get_scenario


def found(findings: pd.DataFrame) -> set[tuple[str, str, str]]:
    return set(zip(findings["check"], findings["resource"], findings["severity"], strict=True))


class _Scenario:
    scenario = "incident"

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        with Sandbox(cls.scenario) as sb:
            yield sb

    @pytest.fixture
    def ctx(self, sandbox, monkeypatch: pytest.MonkeyPatch):
        def make(report: str, **kw):
            for key, value in sandbox.env.items():
                monkeypatch.setenv(key, value)
            return ReportContext.open(report, **kw)

        return make


class TestIncidentScenario(_Scenario):
    scenario = "incident"

    def test_health_finds_exactly_what_was_planted(self, ctx) -> None:
        c = ctx("health")
        data = reports.gather_health(c, window="24h")
        assert found(c.findings) == planted("incident", "health")
        assert c.status == "P0"
        # one batched metrics pull for the whole estate; nothing failed
        assert c.usage["calls"]["cloudwatch.GetMetricData"] == 1
        # discovery's DescribeStacks read also gives the stacks' status: one call, not two
        assert c.usage["calls"]["cloudformation.DescribeStacks"] == 1
        assert set(data.stacks["name"]) == {"UserServiceStack", "ProductServiceStack"}
        assert set(c.sources.values()) == {"ok"}
        assert set(data.probes["status_code"]) == {200, 503}
        errors = c.findings.set_index("check").loc["lambda_errors"]
        assert errors["value"] > 100 and errors["threshold"] == 100

    def test_cost_makes_one_cost_explorer_request(self, ctx) -> None:
        c = ctx("cost")
        data = reports.gather_cost(c, window="35d")
        assert found(c.findings) == planted("incident", "cost")
        assert c.usage["calls"] == {"ce.GetCostAndUsage": 1}
        anomaly = get_scenario("incident").cost.anomaly
        row = data.anomalies.iloc[0]
        assert (row["service"], round(row["amount"], 2)) == (anomaly.service, anomaly.amount_usd)
        assert data.budget_usd == 100.0
        assert data.forecast["forecast"] >= data.forecast["month_to_date"] > 0

    def test_maintenance_plans_but_writes_nothing_by_default(self, ctx) -> None:
        c = ctx("maintenance")
        data = reports.gather_maintenance(c)
        assert found(c.findings) == planted("incident", "maintenance")
        assert not data.applied
        assert set(data.retention_result["status"]) == {"planned"}
        assert len(data.stale_plan) == 3 and set(data.stale_result["status"]) == {"planned"}
        writes = {"logs.PutRetentionPolicy", "logs.DeleteLogStream", "cloudwatch.PutMetricAlarm"}
        assert not writes & set(c.usage["calls"])
        # the same state read again: still there
        again = ctx("maintenance")
        assert found(again.findings) == set()
        reports.gather_maintenance(again)
        assert found(again.findings) == planted("incident", "maintenance")

    def test_incident_names_the_deploy_and_the_error(self, ctx) -> None:
        c = ctx("incident")
        data = reports.gather_incident(c, service="product")
        assert found(c.findings) == planted("incident", "incident")
        scenario = get_scenario("incident")
        trigger = data.triggers.iloc[0]
        assert trigger["resource"] == "ProductServiceStack" and trigger["kind"] == "deploy"
        # the spike starts 7 minutes after the deploy began
        assert 5 <= trigger["minutes_before_onset"] <= 10
        top = c.findings.set_index("check").loc["top_error"]
        assert top["message"] == scenario.spike.signature
        assert data.escalation["who"] == "tech lead" and data.escalation["channel"] == "#incidents"
        assert data.playbook_id == "api-down"
        # every automated step of the api-down playbook was performed by the report itself
        automated = data.playbook[data.playbook["kind"] == "automated"]
        assert len(automated) == 5 and automated["ran_here"].all()
        assert data.headline == "product: the service is down (/health answered HTTP 503)"
        esc = dict(data.escalation_frame.values.tolist())
        assert esc["who responds now"] == "level 3: tech lead (@tech-lead)"
        assert esc["next escalation"].startswith("none")
        assert esc["open for"].endswith("counted from the error onset")

    def test_incident_log_lines_show_the_change_not_the_runtime_noise(self, ctx) -> None:
        c = ctx("incident")
        data = reports.gather_incident(c, service="product")
        lines = data.lines_around_onset
        onset = data.onset
        assert 0 < len(lines) <= 30
        assert lines["timestamp"].between(onset - pd.Timedelta(minutes=5), onset + pd.Timedelta(minutes=5)).all()
        assert (lines["timestamp"] < onset).sum() <= 10 and (lines["timestamp"] >= onset).sum() <= 20
        assert not lines["text"].str.contains(r"^(?:START|END|REPORT) RequestId", regex=True).any()
        errors = lines[lines["level"] == "ERROR"]["text"]
        # Per error: its first line in full with the stack trace, its repeats cut.
        firsts = errors.str.split("\n").str[0]
        assert firsts.value_counts().max() >= 2  # the spike's error repeats
        for _, same in errors.groupby(firsts.to_numpy()):
            assert not same.iloc[0].endswith("(stack trace as above)")
            assert same.iloc[1:].str.endswith("\n    (stack trace as above)").all()
        spike = errors[firsts == firsts.value_counts().index[0]]
        assert "\n    at " in spike.iloc[0]  # the stack trace, once
        before = int((lines["timestamp"] < onset).sum())
        assert data.lines_note.startswith(f"{len(lines)} of the ")
        assert f": {before} before the onset at {onset:%H:%M} UTC and {len(lines) - before} from it" in data.lines_note
        # the deploy's first stack event is the trigger's row, not a second row
        trigger_time = data.triggers.iloc[0]["time"]
        assert (data.timeline["time"] == trigger_time).sum() == 1

    def test_incident_accepts_the_stack_name_and_a_declared_severity(self, ctx) -> None:
        c = ctx("incident")
        data = reports.gather_incident(c, service="ProductServiceStack", severity="P2")
        assert data.severity == "P0" and data.declared == "P2"
        assert any("declared P2" in r for r in data.reasons)

    def test_incident_output_carries_no_secret(self, ctx) -> None:
        c = ctx("incident")
        data = reports.gather_incident(c, service="product", start=None, end=None)
        text = " ".join([
            data.signatures["example"].astype(str).str.cat(sep=" "),
            data.lines_around_onset["text"].astype(str).str.cat(sep=" "),
            data.timeline["what"].astype(str).str.cat(sep=" "),
        ])
        for secret in SECRETS:
            assert secret not in text

    def test_a_failed_source_becomes_data_unavailable(self, ctx) -> None:
        ctx("health")  # points the environment at the sandbox
        session = get_session(max_attempts=1)

        def throttle(request, **_):
            response = AWSResponse(request.url, 400, {"Content-Type": "application/json"}, None)
            response._content = b'{"__type": "Throttling", "message": "Rate exceeded"}'
            return response

        session.events.register("before-send.cloudwatch.GetMetricData", throttle)
        c = ReportContext.open("health", boto3_session=session)
        reports.gather_health(c, window="24h")
        unavailable = c.findings[c.findings["check"] == "data_unavailable"]
        assert list(unavailable["resource"]) == ["cloudwatch.GetMetricData"]
        assert list(unavailable["severity"]) == ["P2"]
        # the metric checks are skipped, the rest still judged
        assert "lambda_errors" not in set(c.findings["check"])
        assert "api_health" in set(c.findings["check"])


class TestHealthyScenario(_Scenario):
    scenario = "healthy"

    @pytest.mark.parametrize("report", ["health", "cost", "maintenance"])
    def test_nothing_above_p3(self, ctx, report: str) -> None:
        c = ctx(report)
        {"health": reports.gather_health, "cost": reports.gather_cost,
         "maintenance": reports.gather_maintenance}[report](c)
        assert found(c.findings) == planted("healthy", report)
        assert set(c.findings["severity"]) <= {"P3"}

    def test_incident_on_a_healthy_service_is_p3_without_trigger(self, ctx) -> None:
        c = ctx("incident")
        data = reports.gather_incident(c, service="user")
        assert data.severity == "P3"
        assert data.triggers.empty
        assert data.playbook_id is None and data.playbook.empty  # nothing calls for a playbook
        assert set(c.findings["check"]) <= {"incident_severity", "top_error"}
        assert data.headline == "user: nothing above the runbook's thresholds, a minor issue at most"
        assert data.lines_around_onset.empty and data.lines_note.startswith("No error onset was found")


def test_plan_view_puts_status_beside_the_plan() -> None:
    plan = pd.DataFrame({"action": ["delete", "delete"], "target": ["g:a", "g:b"],
                         "log_group": ["g", "g"], "log_stream": ["a", "b"]})
    result = pd.DataFrame({"action": ["delete", "delete"], "target": ["g:a", "g:b"],
                           "applied": [True, False], "status": ["done", "error: gone"]})
    view = reports.plan_view(plan, result, ["log_group", "log_stream", "no_such_column"])
    assert view.to_dict("records") == [
        {"log_group": "g", "log_stream": "a", "status": "done"},
        {"log_group": "g", "log_stream": "b", "status": "error: gone"},
    ]
