"""The sandbox: what each scenario seeds, read back with plain boto3 through ``.env`` only.

One sandbox per scenario (class-scoped: moto's state is process-global, so two must not
overlap). Expected numbers are computed here from the scenario's declared parameters.
"""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from evilent_nb.exceptions import ParameterError
from evilent_nb.sandbox import SCENARIOS, SECRETS, Sandbox, Scenario, get_scenario, serve
from evilent_nb.sandbox.scenario import DAILY_SHAPE, WEEKDAY_COST_FACTOR, floor_hour, round_half_up

CHECKS = {
    "api_health", "stack_status", "lambda_errors", "lambda_duration", "lambda_invocations",
    "lambda_throttles", "apigw_5xx_rate", "log_errors", "db_status", "alarm_state",
    "monthly_cost", "cost_anomaly", "log_retention", "stale_log_streams", "unused_policy",
    "db_backup_age", "deprecated_runtime", "missing_alarm", "data_unavailable",
    "incident_severity", "suspected_trigger", "top_error",
}  # fmt: skip
SEVERITIES = ("P0", "P1", "P2", "P3")
# Minute 25 of the current hour (never in the future): the spike then fills the previous hour.
NOW = floor_hour(datetime.now(UTC) - timedelta(minutes=25)) + timedelta(minutes=25)
LAST_FULL_HOUR = floor_hour(NOW) - timedelta(hours=1)


def _start(scenario: str | Scenario) -> Sandbox:
    return Sandbox(scenario, now=NOW).start()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A client factory that knows nothing but the sandbox's ``.env``."""
    sandbox: Sandbox = request.getfixturevalue("sandbox")
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    return lambda service: boto3.Session().client(service)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _metric(cw, namespace: str, name: str, dim: tuple[str, str], start: datetime, stat: str,
            period: int = 3600, end: datetime | None = None) -> list[float]:  # fmt: skip
    response = cw.get_metric_data(
        MetricDataQueries=[{
            "Id": "m",
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": name,
                           "Dimensions": [{"Name": dim[0], "Value": dim[1]}]},
                "Period": period, "Stat": stat,
            },
        }],
        StartTime=start, EndTime=end or start + timedelta(seconds=period),
        ScanBy="TimestampAscending",
    )  # fmt: skip
    return response["MetricDataResults"][0]["Values"]


def _events(logs, group: str, start: datetime, end: datetime, pattern: str = "") -> list[dict]:
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, startTime=_ms(start), endTime=_ms(end) - 1, filterPattern=pattern
    )
    return [e for page in pages for e in page["events"]]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- the registry -------------------------------------------------------------------------


def test_registry_declares_scenarios_with_known_checks():
    assert {"incident", "healthy"} <= set(SCENARIOS)
    assert get_scenario("incident") is SCENARIOS["incident"]
    with pytest.raises(ParameterError, match="healthy, incident"):
        get_scenario("nope")
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name
        for planted in scenario.planted:
            assert planted.check in CHECKS and planted.severity in SEVERITIES
    assert all(p.severity == "P3" for p in SCENARIOS["healthy"].planted)
    incident = SCENARIOS["incident"]
    assert {p.severity for p in incident.planted} >= {"P0", "P1", "P3"}
    # The spike hits the deployed stack's service, minutes after the deploy.
    assert incident.deploy is not None and incident.spike is not None
    spiking = incident.service(incident.spike.service)
    assert spiking.stack == incident.deploy.stack
    assert timedelta(minutes=5) <= incident.deploy.ago - incident.spike.starts_ago <= timedelta(minutes=10)
    assert {p.resource for p in incident.planted_for("lambda_errors")} == {spiking.function}


# -- incident ------------------------------------------------------------------------------


class TestIncident:
    scenario = SCENARIOS["incident"]
    user = scenario.service("user")
    product = scenario.service("product")

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        sandbox = _start(cls.scenario)
        yield sandbox
        sandbox.stop()

    def test_planted_resources_exist(self, sandbox, aws):
        functions = {f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]}
        apis = {a["name"] for a in aws("apigateway").get_rest_apis()["items"]}
        groups = {g["logGroupName"] for g in aws("logs").describe_log_groups()["logGroups"]}
        policies = {p["PolicyName"] for p in aws("iam").list_policies(Scope="Local")["Policies"]}
        stacks = {s["StackName"] for s in aws("cloudformation").describe_stacks()["Stacks"]}
        known = functions | apis | groups | policies | stacks | set(self.scenario.cost.daily_usd)
        known |= {s.name for s in self.scenario.services}
        assert functions == {self.user.function, self.product.function}
        assert apis == {"UserServiceApi", "ProductServiceApi"}
        assert {p.resource for p in self.scenario.planted} <= known

    def test_stack_outputs_point_at_health_server(self, sandbox, aws):
        cfn = aws("cloudformation")
        for svc in (self.user, self.product):
            stack = cfn.describe_stacks(StackName=svc.stack)["Stacks"][0]
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
            assert outputs == {svc.url_output: f"{sandbox.health_url}/{svc.name}"}
            assert outputs[svc.url_output].startswith("http://127.0.0.1:")
            resources = {
                r["ResourceType"]: r["PhysicalResourceId"]
                for r in cfn.describe_stack_resources(StackName=svc.stack)["StackResources"]
            }
            assert resources["AWS::Lambda::Function"] == svc.function
            assert resources["AWS::Logs::LogGroup"] == svc.log_group
            assert resources["AWS::ApiGateway::RestApi"] == sandbox.seeded.api_ids[svc.api]
        assert _status(f"{sandbox.health_url}/user/health") == 200
        assert _status(f"{sandbox.health_url}/product/health") == 503
        assert _status(f"{sandbox.health_url}/nothing/health") == 404

    def test_deploy_is_two_hours_ago(self, sandbox, aws):
        cfn = aws("cloudformation")
        stacks = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
        assert stacks == {"UserServiceStack": "CREATE_COMPLETE", "ProductServiceStack": "UPDATE_COMPLETE"}
        events = cfn.describe_stack_events(StackName=self.product.stack)["StackEvents"]
        times = {e["ResourceStatus"]: e["Timestamp"] for e in events}
        deploy_at = NOW - timedelta(hours=2)
        assert times["UPDATE_IN_PROGRESS"] == deploy_at
        assert times["UPDATE_COMPLETE"] == deploy_at + self.scenario.deploy.took
        assert times["CREATE_COMPLETE"] < NOW - timedelta(days=80)
        lam = aws("lambda")
        product = lam.get_function_configuration(FunctionName=self.product.function)
        assert product["LastModified"] == (deploy_at + timedelta(seconds=41)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        assert product["Environment"]["Variables"]["CODE_VERSION"] == "1.9.0"
        user = lam.get_function_configuration(FunctionName=self.user.function)
        assert user["Runtime"] == "nodejs16.x"
        assert user["LastModified"].startswith(f"{NOW - timedelta(days=41):%Y-%m-%dT%H:%M:%S}")

    def test_error_spike_metrics_in_the_last_full_hour(self, sandbox, aws):
        cw = aws("cloudwatch")
        fn = ("FunctionName", self.product.function)
        shape = DAILY_SHAPE[LAST_FULL_HOUR.hour]
        invocations = round_half_up(self.product.peak_invocations * shape)
        errors = round_half_up(invocations * 0.30)  # the whole hour is inside the spike
        assert _metric(cw, "AWS/Lambda", "Invocations", fn, LAST_FULL_HOUR, "Sum") == [invocations]
        assert _metric(cw, "AWS/Lambda", "Errors", fn, LAST_FULL_HOUR, "Sum") == [errors]
        assert errors > 100
        base_ms = self.product.duration_ms * (0.8 + 0.4 * shape)
        [duration] = _metric(cw, "AWS/Lambda", "Duration", fn, LAST_FULL_HOUR, "Average")
        assert duration == pytest.approx(((invocations - errors) * base_ms + errors * 3000.0) / invocations)
        assert duration < 5000
        api = ("ApiName", self.product.api)
        requests = invocations + round_half_up(invocations * 0.02)
        assert _metric(cw, "AWS/ApiGateway", "Count", api, LAST_FULL_HOUR, "Sum") == [requests]
        assert _metric(cw, "AWS/ApiGateway", "5XXError", api, LAST_FULL_HOUR, "Sum") == [errors]
        [rate] = _metric(cw, "AWS/ApiGateway", "5XXError", api, LAST_FULL_HOUR, "Average")
        assert rate == pytest.approx(errors / requests) and 0.10 < rate < 1.0
        # The spike is the only thing above the thresholds: the day before was quiet.
        day_before = LAST_FULL_HOUR - timedelta(hours=24)
        quiet = _metric(cw, "AWS/Lambda", "Errors", fn, day_before - timedelta(hours=23), "Sum",
                        end=day_before + timedelta(hours=1))  # fmt: skip
        assert len(quiet) == 24 and max(quiet) < 10

    def test_user_baseline_hour_and_db_metrics(self, sandbox, aws):
        cw = aws("cloudwatch")
        hour = LAST_FULL_HOUR - timedelta(hours=30)
        invocations = round_half_up(self.user.peak_invocations * DAILY_SHAPE[hour.hour])
        fn = ("FunctionName", self.user.function)
        assert _metric(cw, "AWS/Lambda", "Invocations", fn, hour, "Sum") == [invocations]
        assert _metric(cw, "AWS/Lambda", "Errors", fn, hour, "Sum") == [round_half_up(invocations * 0.0015)]
        assert _metric(cw, "AWS/Lambda", "Throttles", fn, hour, "Sum") == [0.0]
        db = ("DBInstanceIdentifier", self.scenario.db.identifier)
        [conns] = _metric(cw, "AWS/RDS", "DatabaseConnections", db, LAST_FULL_HOUR, "Average")
        assert conns == pytest.approx(87.0)
        [cpu] = _metric(cw, "AWS/RDS", "CPUUtilization", db, hour, "Average")
        assert cpu == pytest.approx(6 + 30 * DAILY_SHAPE[hour.hour])

    def test_log_events_match_metrics_and_carry_secrets(self, sandbox, aws):
        logs = aws("logs")
        start = NOW - timedelta(days=60)
        for group, count in sandbox.seeded.log_events.items():
            assert len(_events(logs, group, start, NOW + timedelta(minutes=1))) == count
        assert sandbox.seeded.log_events[self.product.log_group] > 7 * 2000  # thousands a day
        hour_end = LAST_FULL_HOUR + timedelta(hours=1)
        errors = _events(logs, self.product.log_group, LAST_FULL_HOUR, hour_end, "ERROR")
        invocations = round_half_up(self.product.peak_invocations * DAILY_SHAPE[LAST_FULL_HOUR.hour])
        assert len(errors) == round_half_up(invocations * 0.30)
        signature = self.scenario.spike.signature
        assert all(signature in e["message"] for e in errors)
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\tERROR\t" + signature + "\n    at ",
                        errors[0]["message"])  # fmt: skip
        reports = _events(logs, self.product.log_group, LAST_FULL_HOUR, hour_end, "REPORT RequestId")
        assert all("\tBilled Duration: " in e["message"] for e in reports)
        everything = "\n".join(
            e["message"] for g in (self.user.log_group, self.product.log_group)
            for e in _events(logs, g, NOW - timedelta(days=2), NOW)
        )  # fmt: skip
        for secret in SECRETS:
            assert secret in everything

    def test_stale_streams_and_retention(self, sandbox, aws):
        logs = aws("logs")
        retention = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
        assert retention == {self.user.log_group: 30, self.product.log_group: None}
        streams = logs.describe_log_streams(
            logGroupName=self.user.log_group, orderBy="LastEventTime", descending=False
        )["logStreams"]
        stale = [s for s in streams if s["lastEventTimestamp"] < _ms(NOW - timedelta(days=30))]
        assert sorted(s["lastEventTimestamp"] for s in stale) == [
            _ms(NOW - timedelta(days=47)), _ms(NOW - timedelta(days=46)), _ms(NOW - timedelta(days=45))
        ]
        assert len(streams) == len(sandbox.seeded.log_streams[self.user.log_group]) + 3
        product_streams = logs.describe_log_streams(logGroupName=self.product.log_group)["logStreams"]
        assert min(s["lastEventTimestamp"] for s in product_streams) > _ms(NOW - timedelta(days=8))

    def test_policies_alarms_db_and_backups(self, sandbox, aws):
        counts = {p["PolicyName"]: p["AttachmentCount"]
                  for p in aws("iam").list_policies(Scope="Local")["Policies"]}  # fmt: skip
        assert counts == {"EvilentUserServiceDbAccess": 1, "EvilentProductServiceDataAccess": 1,
                          "EvilentBackupWriter": 2, "EvilentLegacyReportingAccess": 0}  # fmt: skip
        alarms = {a["AlarmName"]: a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]}
        assert set(alarms) == {"UserService-HighErrorRate", "UserService-HighLatency"}
        errors = alarms["UserService-HighErrorRate"]
        assert (errors["MetricName"], errors["Statistic"], errors["Period"], errors["EvaluationPeriods"],
                errors["Threshold"], errors["StateValue"]) == ("Errors", "Sum", 3600, 1, 10.0, "OK")  # fmt: skip
        assert errors["AlarmActions"] == [f"arn:aws:sns:eu-central-1:123456789012:{self.scenario.sns_topic}"]
        latency = alarms["UserService-HighLatency"]
        assert (latency["Statistic"], latency["Period"], latency["EvaluationPeriods"], latency["Threshold"]) == (
            "Average", 300, 2, 5000.0)
        rds = aws("rds")
        [db] = rds.describe_db_instances()["DBInstances"]
        assert (db["DBInstanceIdentifier"], db["Engine"], db["DBInstanceStatus"]) == (
            "evilent-user-service-db", "postgres", "available")
        manual = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        assert len(manual) == 7
        assert max(s["SnapshotCreateTime"] for s in manual) == NOW - timedelta(hours=6)
        s3 = aws("s3")
        for prefix in ("user-service/", "product-service/"):
            objects = s3.list_objects_v2(Bucket="evilent-backups", Prefix=prefix)["Contents"]
            assert len(objects) == 7
            newest = max(objects, key=lambda o: o["LastModified"])
            yesterday = NOW - timedelta(days=1)
            assert f"{yesterday:%Y-%m-%d}" in newest["Key"]
            assert newest["LastModified"] == yesterday.replace(hour=2, minute=30, second=0)

    def test_cost_explorer_rows(self, sandbox, aws):
        ce = aws("ce")
        today = NOW.date()
        response = ce.get_cost_and_usage(
            TimePeriod={"Start": (today - timedelta(days=89)).isoformat(),
                        "End": (today + timedelta(days=1)).isoformat()},
            Granularity="DAILY", Metrics=["UnblendedCost"],
            GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
        )  # fmt: skip
        assert response["GroupDefinitions"] == [{"Type": "DIMENSION", "Key": "SERVICE"}]
        rows = response["ResultsByTime"]
        assert len(rows) == 90 and rows[-1]["TimePeriod"] == {
            "Start": today.isoformat(), "End": (today + timedelta(days=1)).isoformat()}
        assert [r["Estimated"] for r in rows[-3:]] == [False, True, True]
        plan = self.scenario.cost
        by_day = {r["TimePeriod"]["Start"]: {g["Keys"][0]: g["Metrics"]["UnblendedCost"] for g in r["Groups"]}
                  for r in rows}  # fmt: skip
        anomaly_day = by_day[(today - timedelta(days=3)).isoformat()]
        assert anomaly_day["AmazonCloudWatch"] == {"Amount": "3.4500000000", "Unit": "USD"}
        ordinary = today - timedelta(days=10)
        expected = plan.daily_usd["AWS Lambda"] * WEEKDAY_COST_FACTOR[ordinary.weekday()]
        assert float(by_day[ordinary.isoformat()]["AWS Lambda"]["Amount"]) == pytest.approx(expected)
        assert set(by_day[today.isoformat()]) == set(plan.daily_usd) >= {
            "AWS Lambda", "Amazon API Gateway", "Amazon Relational Database Service",
            "Amazon Simple Storage Service", "AmazonCloudWatch"}
        fraction = (NOW - datetime(today.year, today.month, today.day, tzinfo=UTC)) / timedelta(days=1)
        assert float(by_day[today.isoformat()]["AWS Lambda"]["Amount"]) == pytest.approx(
            plan.daily_usd["AWS Lambda"] * WEEKDAY_COST_FACTOR[today.weekday()] * fraction)


# -- healthy -------------------------------------------------------------------------------


class TestHealthy:
    scenario = SCENARIOS["healthy"]

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        sandbox = _start(cls.scenario)
        yield sandbox
        sandbox.stop()

    def test_nothing_above_p3_in_a_week_of_metrics(self, sandbox, aws):
        cw = aws("cloudwatch")
        start = floor_hour(NOW) - timedelta(days=7)
        end = floor_hour(NOW)
        for svc in self.scenario.services:
            fn = ("FunctionName", svc.function)
            invocations = _metric(cw, "AWS/Lambda", "Invocations", fn, start, "Sum", end=end)
            assert len(invocations) == 7 * 24
            assert max(invocations) == round_half_up(svc.peak_invocations * 1.0) < 10_000
            assert max(_metric(cw, "AWS/Lambda", "Errors", fn, start, "Sum", end=end)) < 10
            assert max(_metric(cw, "AWS/Lambda", "Duration", fn, start, "Average", end=end)) < 5000
            assert sum(_metric(cw, "AWS/Lambda", "Throttles", fn, start, "Sum", end=end)) == 0
            rates = _metric(cw, "AWS/ApiGateway", "5XXError", ("ApiName", svc.api), start, "Average", end=end)
            assert max(rates) < 0.05
            assert _status(f"{sandbox.health_url}/{svc.name}/health") == 200

    def test_maintenance_is_clean(self, sandbox, aws):
        logs = aws("logs")
        groups = logs.describe_log_groups()["logGroups"]
        assert {g["logGroupName"]: g.get("retentionInDays") for g in groups} == {
            svc.log_group: 30 for svc in self.scenario.services}
        for group in groups:
            streams = logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]
            assert min(s["lastEventTimestamp"] for s in streams) > _ms(NOW - timedelta(days=8))
        policies = aws("iam").list_policies(Scope="Local")["Policies"]
        assert len(policies) == 3 and min(p["AttachmentCount"] for p in policies) >= 1
        alarms = aws("cloudwatch").describe_alarms()["MetricAlarms"]
        assert sorted(a["AlarmName"] for a in alarms) == sorted(
            name for svc in self.scenario.services for name in svc.alarm_names)
        assert {a["StateValue"] for a in alarms} == {"OK"}
        runtimes = {f["Runtime"] for f in aws("lambda").list_functions()["Functions"]}
        assert runtimes == {"nodejs20.x"}
        stacks = aws("cloudformation").describe_stacks()["Stacks"]
        assert {s["StackStatus"] for s in stacks} == {"CREATE_COMPLETE"}
        # ERROR lines exist (log_errors is P3, planted) but stay a handful an hour.
        errors = _events(logs, self.scenario.services[0].log_group, NOW - timedelta(hours=24), NOW, "ERROR")
        assert 0 < len(errors) < 24 * 10

    def test_cost_has_no_anomaly_and_stays_under_budget(self, sandbox, aws):
        rows = aws("ce").get_cost_and_usage(
            TimePeriod={"Start": "2020-01-01", "End": "2020-01-02"}, Granularity="DAILY",
            Metrics=["UnblendedCost"], GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
        )["ResultsByTime"]  # fmt: skip
        daily = [sum(float(g["Metrics"]["UnblendedCost"]["Amount"]) for g in r["Groups"]) for r in rows]
        assert max(daily) * 31 < 100  # no monthly_cost finding, whatever the day of the month
        cloudwatch = [float(g["Metrics"]["UnblendedCost"]["Amount"])
                      for r in rows[:-1] for g in r["Groups"] if g["Keys"] == ["AmazonCloudWatch"]]  # fmt: skip
        assert max(cloudwatch) <= 0.28 * max(WEEKDAY_COST_FACTOR) + 1e-9


# -- lifecycle ---------------------------------------------------------------------------

TINY = replace(SCENARIOS["healthy"], name="tiny", history_days=1, cost=replace(SCENARIOS["healthy"].cost, days=3))


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_loopback_only_and_clean_stop():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        wanted = sock.getsockname()[1]
    threads_before = set(threading.enumerate())
    sandbox = Sandbox(TINY, wanted, now=NOW).start()
    try:
        assert sandbox.port == wanted and sandbox.endpoint_url == f"http://127.0.0.1:{wanted}"
        moto_addr = sandbox._moto._server.socket.getsockname()
        health_addr = sandbox._health._server.socket.getsockname()
        assert moto_addr[0] == "127.0.0.1" and health_addr[0] == "127.0.0.1"
        ports = (moto_addr[1], health_addr[1])
        assert not any(_bindable(p) for p in ports)
        assert sandbox.env == {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{wanted}", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-central-1"}  # fmt: skip
        assert sandbox.export_lines()[0] == f"export AWS_ENDPOINT_URL=http://127.0.0.1:{wanted}"
        with pytest.raises(RuntimeError, match="already running"):
            Sandbox(TINY).start()
    finally:
        sandbox.stop()
    assert all(_bindable(p) for p in ports)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads_before == set()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{wanted}/moto-api/", timeout=2)
    sandbox.stop()  # idempotent


def test_serve_prints_exports_and_stops():
    out = io.StringIO()
    stop = threading.Event()

    def stop_when_serving() -> None:
        deadline = time.monotonic() + 60
        while "serving until Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    watcher = threading.Thread(target=stop_when_serving)
    watcher.start()
    serve(TINY, out=out, stop=stop)
    watcher.join()
    text = out.getvalue()
    assert re.search(r"^export AWS_ENDPOINT_URL=http://127\.0\.0\.1:\d+$", text, re.M)
    assert "export AWS_DEFAULT_REGION=eu-central-1" in text
    assert "UserServiceStack" in text and "P3 log_errors" in text
    assert Sandbox._active is None
