"""``incident`` (the demo): a product-service deploy two hours ago, then an error spike.

About 7 minutes after ``ProductServiceStack`` is updated, 30 % of the product function's
invocations time out connecting to the user database: well over 100 errors an hour, one
error signature dominating, a 5xx rate near 30 % on ``ProductServiceApi`` and its
``/health`` answering 503. Elsewhere: a CloudWatch cost anomaly three days ago, stale log
streams in the user log group, no retention on the product log group, an unattached
policy, a deprecated runtime on the user function and no runbook alarms for the product
function (which is why nobody was paged).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ..scenario import CostAnomaly, Deploy, ErrorSpike, Planted, PolicyPlan, Scenario, StaleStreams
from ._estate import COST, POLICIES, PRODUCT, USER

user = replace(USER, runtime="nodejs16.x")
product = replace(PRODUCT, health_status=503, log_retention_days=None, runbook_alarms=False)

SIGNATURE = "Error: Connection terminated due to connection timeout"
UNUSED_POLICY = PolicyPlan(
    name="EvilentLegacyReportingAccess",
    attached_to=(),
    actions=("rds:DescribeDBInstances", "s3:GetObject"),
)
ANOMALY = CostAnomaly(service="AmazonCloudWatch", days_ago=3, amount_usd=3.45)

# The severity the evidence supports: /health answering 503 is api_health's P0.
INCIDENT_SEVERITY = "P0"

SCENARIO = Scenario(
    name="incident",
    description=(
        "ProductServiceStack deployed 2 h ago; minutes later its function fails 30 % of calls "
        "with a DB connection timeout and /health answers 503. Plus maintenance debt."
    ),
    services=(user, product),
    cost=replace(COST, anomaly=ANOMALY),
    policies=(*POLICIES, UNUSED_POLICY),
    deploy=Deploy(stack=product.stack, ago=timedelta(hours=2), code_version="1.9.0"),
    spike=ErrorSpike(
        service=product.name,
        starts_ago=timedelta(hours=2) - timedelta(minutes=7),
        error_ratio=0.30,
        signature=SIGNATURE,
    ),
    stale_streams=(StaleStreams(log_group=user.log_group, count=3, days_old=45),),
    alarm_states={name: "OK" for name in user.alarm_names},
    planted=(
        Planted("api_health", product.api, "P0", product.name),
        Planted("lambda_errors", product.function, "P1", product.name),
        Planted("apigw_5xx_rate", product.api, "P1", product.name),
        Planted("log_errors", user.log_group, "P3", user.name),
        Planted("log_errors", product.log_group, "P3", product.name),
        Planted("cost_anomaly", ANOMALY.service, "P3", None),
        Planted("log_retention", product.log_group, "P3", product.name),
        Planted("stale_log_streams", user.log_group, "P3", user.name),
        Planted("unused_policy", UNUSED_POLICY.name, "P3", None),
        Planted("deprecated_runtime", user.function, "P3", user.name),
        Planted("missing_alarm", product.function, "P3", product.name),
        Planted("incident_severity", product.name, INCIDENT_SEVERITY, product.name),
        Planted("suspected_trigger", product.stack, INCIDENT_SEVERITY, product.name),
        Planted("top_error", product.log_group, INCIDENT_SEVERITY, product.name),
    ),
)
