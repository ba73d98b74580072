"""Seed a running moto server with a scenario's EVILENT estate.

Everything moto's API accepts goes through plain boto3 pointed at the server. The rest is
written into moto's backends in-process (the server shares this process's backends), only
where the API refuses: backdated stack events and function ``LastModified`` (a deploy two
hours ago), log events older than 14 days (stale streams), snapshot and object times, and
Cost Explorer results (moto has no API to create them).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from .loglines import LoggedEvent, service_log_events, stale_stream_events
from .scenario import DAILY_SHAPE, Scenario, ServicePlan, daily_cost, hour_buckets, hourly_load

__all__ = [
    "ACCOUNT_ID",
    "CE_QUEUE_COPIES",
    "CREDENTIALS",
    "SeedRecord",
    "cost_and_usage_result",
    "seed",
    "stack_template",
]

ACCOUNT_ID = "123456789012"  # moto's default account, used for the test credentials
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: Cost Explorer hands each new request body the next queued result: queue plenty.
CE_QUEUE_COPIES = 100
# AWS's limits for one PutLogEvents / PutMetricData call.
_LOG_BATCH_EVENTS = 10_000
_LOG_BATCH_BYTES = 1_000_000
_METRIC_BATCH = 1000
_RDS_SAMPLES_PER_HOUR = 60  # RDS publishes one datapoint a minute


@dataclass
class SeedRecord:
    """What seeding wrote, for summaries and tests that check nothing was lost."""

    created_at: datetime
    deploy_at: datetime | None = None
    deploy_done_at: datetime | None = None
    spike_start: datetime | None = None
    topic_arn: str = ""
    api_ids: dict[str, str] = field(default_factory=dict)
    log_events: dict[str, int] = field(default_factory=dict)
    log_streams: dict[str, list[str]] = field(default_factory=dict)
    stale_streams: dict[str, dict[str, datetime]] = field(default_factory=dict)
    metric_datums: int = 0
    snapshots: list[str] = field(default_factory=list)
    backup_keys: list[str] = field(default_factory=list)
    cost_result: dict[str, Any] = field(default_factory=dict)


def _naive(when: datetime) -> datetime:
    """moto's backends hold naive UTC datetimes."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _aws_lambda_time(when: datetime) -> str:
    """Lambda's ``LastModified`` format: ``2026-11-28T07:05:12.123+0000``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def _inline_code(service: ServicePlan, code_version: str) -> str:
    """The function's inline source.

    moto's UpdateStack base64-decodes inline ``ZipFile`` code (AWS takes it as plain
    text), so the source avoids ``=`` and is padded to a multiple of 4 base64 letters.
    """
    code = (
        f"// EVILENT {service.name} service {code_version}\n"
        "async function handler(event) {\n"
        "  return { statusCode: 200, body: JSON.stringify({ ok: true }) };\n"
        "}\n"
        "Object.assign(exports, { handler });\n"
    )
    code += "// "
    letters = sum(ch.isascii() and (ch.isalnum() or ch in "+/") for ch in code)
    return code + "x" * (-letters % 4 or 4) + "\n"


def stack_template(service: ServicePlan, api_url: str, *, code_version: str) -> str:
    """The service's CloudFormation template (JSON): role, function with inline code,
    REST API, log group and the ``<Label>ApiUrl`` output."""
    log_group: dict[str, Any] = {"LogGroupName": service.log_group}
    if service.log_retention_days is not None:
        log_group["RetentionInDays"] = service.log_retention_days
    code = _inline_code(service, code_version)
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"EVILENT {service.name} service ({code_version})",
        "Resources": {
            "FunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": service.role,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }],
                    },
                    "ManagedPolicyArns": [
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                    ],
                },
            },
            f"Service{service.label}Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": service.function,
                    "Runtime": service.runtime,
                    "Handler": "index.handler",
                    "MemorySize": 256,
                    "Timeout": 10,
                    "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                    "Code": {"ZipFile": code},
                    "Environment": {"Variables": {
                        "SERVICE_NAME": service.name,
                        "CODE_VERSION": code_version,
                        "NODE_OPTIONS": "--enable-source-maps",
                    }},
                },
            },
            f"{service.label}Api": {
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {"Name": service.api, "Description": f"EVILENT {service.name} API"},
            },
            "FunctionLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": log_group},
        },
        "Outputs": {
            service.url_output: {"Value": api_url, "Description": f"{service.api} base URL"},
        },
    }  # fmt: skip
    return json.dumps(template, indent=1)


class _Seeder:
    def __init__(self, scenario: Scenario, endpoint_url: str, health_base: str, now: datetime) -> None:
        self.scenario = scenario
        self.now = now
        self.health_base = health_base.rstrip("/")
        session = boto3.Session(region_name=scenario.region, **CREDENTIALS)
        config = BotoConfig(retries={"mode": "standard", "max_attempts": 2})
        self._client = lambda name: session.client(name, endpoint_url=endpoint_url, config=config)
        self._clients: dict[str, Any] = {}
        created = now - timedelta(days=max(s.created_days_ago for s in scenario.services))
        self.record = SeedRecord(created_at=created)
        if scenario.deploy is not None:
            self.record.deploy_at = now - scenario.deploy.ago
            self.record.deploy_done_at = self.record.deploy_at + scenario.deploy.took
        if scenario.spike is not None:
            self.record.spike_start = now - scenario.spike.starts_ago

    def client(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = self._client(name)
        return self._clients[name]

    # -- estate ------------------------------------------------------------------------

    def topic(self) -> None:
        self.record.topic_arn = self.client("sns").create_topic(Name=self.scenario.sns_topic)["TopicArn"]

    def stacks(self) -> None:
        from moto.awslambda.utils import get_backend as lambda_backend
        from moto.cloudformation.models import cloudformation_backends

        cfn = self.client("cloudformation")
        cf_backend = cloudformation_backends[ACCOUNT_ID][self.scenario.region]
        fn_backend = lambda_backend(ACCOUNT_ID, self.scenario.region)  # honours use_docker
        deploy = self.scenario.deploy
        for svc in self.scenario.services:
            url = f"{self.health_base}/{svc.name}"
            cfn.create_stack(
                StackName=svc.stack,
                TemplateBody=stack_template(svc, url, code_version=svc.code_version),
                Capabilities=["CAPABILITY_NAMED_IAM"],
                Tags=[{"Key": "project", "Value": "evilent"}, {"Key": "service", "Value": svc.name}],
            )
            if deploy is not None and deploy.stack == svc.stack:
                cfn.update_stack(
                    StackName=svc.stack,
                    TemplateBody=stack_template(svc, url, code_version=deploy.code_version),
                    Capabilities=["CAPABILITY_NAMED_IAM"],
                )
            # The API stamps everything "now": move history to where the scenario puts it.
            created = self.now - timedelta(days=svc.created_days_ago)
            stack = next(s for s in cf_backend.stacks.values() if s.name == svc.stack)
            stack.creation_time = _naive(created)
            for event in stack.events:
                if event.resource_status.startswith("CREATE"):
                    done = event.resource_status == "CREATE_COMPLETE"
                    event.timestamp = _naive(created + timedelta(seconds=118 if done else 0))
                elif event.resource_status.startswith("UPDATE") and self.record.deploy_at:
                    done = event.resource_status == "UPDATE_COMPLETE"
                    at = self.record.deploy_done_at if done else self.record.deploy_at
                    event.timestamp = _naive(at)
            modified = self.now - timedelta(days=svc.function_modified_days_ago)
            if deploy is not None and deploy.stack == svc.stack and self.record.deploy_at:
                modified = self.record.deploy_at + timedelta(seconds=41)
            fn = fn_backend.get_function(svc.function)
            fn.last_modified = _aws_lambda_time(modified)
        apis = self.client("apigateway").get_rest_apis()["items"]
        self.record.api_ids = {api["name"]: api["id"] for api in apis}

    def policies(self) -> None:
        iam = self.client("iam")
        for plan in self.scenario.policies:
            document = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": list(plan.actions), "Resource": plan.resource}],
            }
            arn = iam.create_policy(
                PolicyName=plan.name,
                PolicyDocument=json.dumps(document),
                Description=f"EVILENT {plan.name}",
            )["Policy"]["Arn"]
            for role_name in plan.attached_to:
                iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)

    def database(self) -> None:
        from moto.rds.models import rds_backends

        plan = self.scenario.db
        rds = self.client("rds")
        rds.create_db_instance(
            DBInstanceIdentifier=plan.identifier,
            Engine=plan.engine,
            EngineVersion="16.3",
            DBInstanceClass=plan.instance_class,
            AllocatedStorage=plan.allocated_gb,
            DBName=plan.db_name,
            MasterUsername="evilent_admin",
            MasterUserPassword="not-a-real-password-1",
            BackupRetentionPeriod=7,
            Tags=[{"Key": "project", "Value": "evilent"}],
        )
        backend = rds_backends[ACCOUNT_ID][self.scenario.region]
        backend.databases[plan.identifier].created = _naive(self.record.created_at)
        newest = self.now - plan.newest_snapshot_age
        for days_back in range(plan.snapshot_days):
            taken = newest - timedelta(days=days_back)
            snap_id = f"{plan.identifier}-{taken:%Y-%m-%d}"
            rds.create_db_snapshot(DBSnapshotIdentifier=snap_id, DBInstanceIdentifier=plan.identifier)
            snap = backend.database_snapshots[snap_id]
            snap.created = _naive(taken)
            snap.original_snapshot_create_time = _naive(taken)
            self.record.snapshots.append(snap_id)

    def backups(self) -> None:
        from moto.s3.models import s3_backends

        plan = self.scenario.backups
        s3 = self.client("s3")
        s3.create_bucket(
            Bucket=plan.bucket,
            CreateBucketConfiguration={"LocationConstraint": self.scenario.region},
        )
        bucket = s3_backends[ACCOUNT_ID]["global"].buckets[plan.bucket]
        for days_back in range(1, plan.days + 1):
            taken = (self.now - timedelta(days=days_back)).replace(hour=2, minute=30, second=0, microsecond=0)
            for prefix, pattern in plan.dumps.items():
                key = prefix + pattern.format(date=f"{taken:%Y-%m-%d}")
                s3.put_object(Bucket=plan.bucket, Key=key, Body=b"\x1f\x8b" + key.encode() * 40)
                bucket.keys[key].last_modified = _naive(taken)
                self.record.backup_keys.append(key)

    def alarms(self) -> None:
        cw = self.client("cloudwatch")
        for svc in self.scenario.services:
            if not svc.runbook_alarms:
                continue
            errors_name, latency_name = svc.alarm_names
            common = {
                "Namespace": "AWS/Lambda",
                "Dimensions": [{"Name": "FunctionName", "Value": svc.function}],
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmActions": [self.record.topic_arn],
                "TreatMissingData": "notBreaching",
            }
            cw.put_metric_alarm(
                AlarmName=errors_name, MetricName="Errors", Statistic="Sum", Period=3600,
                EvaluationPeriods=1, Threshold=10.0,
                AlarmDescription=f"{svc.label}: more than 10 errors in an hour", **common,
            )  # fmt: skip
            cw.put_metric_alarm(
                AlarmName=latency_name, MetricName="Duration", Statistic="Average", Period=300,
                EvaluationPeriods=2, Threshold=5000.0,
                AlarmDescription=f"{svc.label}: average duration above 5 s", **common,
            )  # fmt: skip
        for name, state in self.scenario.alarm_states.items():
            cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="Seeded by the sandbox")

    # -- history -----------------------------------------------------------------------

    def metrics(self) -> None:
        datums: dict[str, list[dict[str, Any]]] = {"AWS/Lambda": [], "AWS/ApiGateway": [], "AWS/RDS": []}

        def put(ns: str, name: str, dim: tuple[str, str], at: datetime, unit: str,
                count: float, total: float, low: float, high: float) -> None:  # fmt: skip
            datums[ns].append({
                "MetricName": name,
                "Dimensions": [{"Name": dim[0], "Value": dim[1]}],
                "Timestamp": at,
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
                "Unit": unit,
            })  # fmt: skip

        spike = self.scenario.spike
        for at in hour_buckets(self.now, self.scenario.history_days):
            for svc in self.scenario.services:
                load = hourly_load(self.scenario, svc, at, self.now)
                n = load.invocations
                if n <= 0:
                    continue
                fn = ("FunctionName", svc.function)
                api = ("ApiName", svc.api)
                slowest = max(load.base_duration_ms * 3.2, spike.error_duration_ms if load.spike_errors else 0.0)
                put("AWS/Lambda", "Invocations", fn, at, "Count", n, n, 1, 1)
                put("AWS/Lambda", "Errors", fn, at, "Count", n, load.errors, 0, 1 if load.errors else 0)
                put("AWS/Lambda", "Throttles", fn, at, "Count", n, 0, 0, 0)
                put("AWS/Lambda", "Duration", fn, at, "Milliseconds", n, load.duration_sum_ms,
                    load.base_duration_ms * 0.35, slowest)  # fmt: skip
                r = load.requests
                overhead = svc.latency_overhead_ms
                put("AWS/ApiGateway", "Count", api, at, "Count", r, r, 1, 1)
                put("AWS/ApiGateway", "4XXError", api, at, "Count", r, load.client_errors, 0, 1 if load.client_errors else 0)
                put("AWS/ApiGateway", "5XXError", api, at, "Count", r, load.server_errors, 0, 1 if load.server_errors else 0)
                put("AWS/ApiGateway", "Latency", api, at, "Milliseconds", n,
                    load.duration_sum_ms + n * overhead, overhead, slowest + overhead)  # fmt: skip
            db = ("DBInstanceIdentifier", self.scenario.db.identifier)
            shape = DAILY_SHAPE[at.hour]
            share = 0.0
            if spike is not None:
                share = hourly_load(self.scenario, self.scenario.service(spike.service), at, self.now).spike_share
            conns = (4 + 18 * shape) * (1 - share) + (spike.db_connections if spike else 0) * share
            cpu = (6 + 30 * shape) * (1 - share) + 78.0 * share
            k = _RDS_SAMPLES_PER_HOUR
            put("AWS/RDS", "DatabaseConnections", db, at, "Count", k, conns * k, max(conns - 3, 0), conns + 5)
            put("AWS/RDS", "CPUUtilization", db, at, "Percent", k, cpu * k, cpu * 0.6, min(cpu * 1.5, 100))
            hours_in = (at - self.record.created_at) / timedelta(hours=1)
            free = 16.0e9 - hours_in * 1.2e6
            put("AWS/RDS", "FreeStorageSpace", db, at, "Bytes", k, free * k, free - 2e6, free)

        cw = self.client("cloudwatch")
        for ns, items in datums.items():
            for i in range(0, len(items), _METRIC_BATCH):
                cw.put_metric_data(Namespace=ns, MetricData=items[i : i + _METRIC_BATCH])
            self.record.metric_datums += len(items)

    def logs(self) -> None:
        from moto.logs.models import LogEvent, logs_backends

        logs = self.client("logs")
        for svc in self.scenario.services:
            events = service_log_events(self.scenario, svc, now=self.now, deploy_at=self.record.deploy_at)
            by_stream: dict[str, list[LoggedEvent]] = {}
            for event in events:
                by_stream.setdefault(event.stream, []).append(event)
            for stream, stream_events in by_stream.items():
                logs.create_log_stream(logGroupName=svc.log_group, logStreamName=stream)
                self._put_events(logs, svc.log_group, stream, stream_events)
            self.record.log_events[svc.log_group] = len(events)
            self.record.log_streams[svc.log_group] = list(by_stream)

        # Older than 14 days: the API refuses these, so they go into the backend directly.
        backend = logs_backends[ACCOUNT_ID][self.scenario.region]
        for plan in self.scenario.stale_streams:
            svc = next(s for s in self.scenario.services if s.log_group == plan.log_group)
            streams = stale_stream_events(
                self.scenario, svc, now=self.now, days_old=plan.days_old,
                count=plan.count, per_stream=plan.events_per_stream,
            )  # fmt: skip
            for stream, stream_events in streams.items():
                logs.create_log_stream(logGroupName=plan.log_group, logStreamName=stream)
                model = backend.groups[plan.log_group].streams[stream]
                model.events.extend(
                    LogEvent(e.timestamp + 150, {"timestamp": e.timestamp, "message": e.message})
                    for e in stream_events
                )
                first = datetime.fromtimestamp(stream_events[0].timestamp / 1000, UTC)
                last = datetime.fromtimestamp(stream_events[-1].timestamp / 1000, UTC)
                model.creation_time = _naive(first)
                model.last_ingestion_time = _naive(last + timedelta(milliseconds=150))
                model.stored_bytes += sum(len(e.message) for e in stream_events)
                self.record.stale_streams.setdefault(plan.log_group, {})[stream] = last
                self.record.log_events[plan.log_group] += len(stream_events)

    @staticmethod
    def _put_events(logs: Any, group: str, stream: str, events: list[LoggedEvent]) -> None:
        batch: list[dict[str, Any]] = []
        size = 0
        for event in events:
            event_size = len(event.message.encode()) + 26  # AWS counts 26 bytes per event
            if batch and (len(batch) >= _LOG_BATCH_EVENTS or size + event_size > _LOG_BATCH_BYTES):
                _put_batch(logs, group, stream, batch)
                batch, size = [], 0
            batch.append({"timestamp": event.timestamp, "message": event.message})
            size += event_size
        if batch:
            _put_batch(logs, group, stream, batch)

    def cost(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        result = cost_and_usage_result(self.scenario, now=self.now)
        self.record.cost_result = result
        for _ in range(CE_QUEUE_COPIES):
            moto_api_backend.set_ce_cost_usage(result=copy.deepcopy(result), account_id=ACCOUNT_ID)


def _put_batch(logs: Any, group: str, stream: str, batch: list[dict[str, Any]]) -> None:
    response = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    rejected = response.get("rejectedLogEventsInfo")
    if rejected:
        raise RuntimeError(f"moto rejected seeded log events in {group}/{stream}: {rejected}")


def cost_and_usage_result(scenario: Scenario, *, now: datetime) -> dict[str, Any]:
    """A GetCostAndUsage response: daily UnblendedCost grouped by SERVICE, ``days`` days up
    to today; today and yesterday are ``Estimated``."""
    plan = scenario.cost
    today = now.astimezone(UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    day_fraction = (now - midnight) / timedelta(days=1)
    results = []
    for back in range(plan.days - 1, -1, -1):
        day = today - timedelta(days=back)
        groups = [
            {
                "Keys": [service],
                "Metrics": {"UnblendedCost": {
                    "Amount": f"{daily_cost(plan, service, day, today=today, day_fraction=day_fraction):.10f}",
                    "Unit": "USD",
                }},
            }  # fmt: skip
            for service in plan.daily_usd
        ]
        results.append({
            "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
            "Total": {},
            "Groups": groups,
            "Estimated": back <= 1,
        })  # fmt: skip
    return {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        "ResultsByTime": results,
        "DimensionValueAttributes": [],
    }


def seed(scenario: Scenario, *, endpoint_url: str, health_base: str, now: datetime) -> SeedRecord:
    """Seed the moto server at ``endpoint_url`` with ``scenario``; the stacks' URL outputs
    point at ``health_base``/<service>. Returns what was written."""
    seeder = _Seeder(scenario, endpoint_url, health_base, now)
    seeder.topic()
    seeder.stacks()
    seeder.policies()
    seeder.database()
    seeder.backups()
    seeder.alarms()
    seeder.metrics()
    seeder.logs()
    seeder.cost()
    return seeder.record
