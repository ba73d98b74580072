"""The EVILENT estate every scenario starts from (the runbook's resources, healthy)."""

from __future__ import annotations

from ..scenario import CostPlan, PolicyPlan, ServicePlan

__all__ = ["COST", "POLICIES", "PRODUCT", "USER"]

USER = ServicePlan(
    name="user",
    stack="UserServiceStack",
    function="UserServiceStack-ServiceUserServiceFunction",
    api="UserServiceApi",
    role="UserServiceStack-FunctionRole",
    peak_invocations=3600,
    error_ratio=0.0015,
    duration_ms=140.0,
    error_messages=(
        "TokenExpiredError: jwt expired",
        "ValidationError: \"email\" must be a valid email",
        "ConflictError: user already exists",
    ),
)

PRODUCT = ServicePlan(
    name="product",
    stack="ProductServiceStack",
    function="ProductServiceStack-ServiceProductServiceFunction",
    api="ProductServiceApi",
    role="ProductServiceStack-FunctionRole",
    peak_invocations=2400,
    error_ratio=0.001,
    duration_ms=95.0,
    error_messages=(
        "NotFoundError: product not found",
        "ValidationError: \"price\" must be a positive number",
    ),
)

#: Daily UnblendedCost by AWS service (USD) on an ordinary weekday: about 50 USD a month.
COST = CostPlan(
    daily_usd={
        "AWS Lambda": 0.21,
        "Amazon API Gateway": 0.32,
        "Amazon Relational Database Service": 0.62,
        "Amazon Simple Storage Service": 0.05,
        "AmazonCloudWatch": 0.28,
        "Amazon Simple Notification Service": 0.002,
        "AWS Key Management Service": 0.033,
        "Amazon Virtual Private Cloud": 0.12,
    },
    days=90,
)

POLICIES = (
    PolicyPlan(
        name="EvilentUserServiceDbAccess",
        attached_to=(USER.role,),
        actions=("rds-db:connect", "secretsmanager:GetSecretValue"),
    ),
    PolicyPlan(
        name="EvilentProductServiceDataAccess",
        attached_to=(PRODUCT.role,),
        actions=("secretsmanager:GetSecretValue", "kms:Decrypt"),
    ),
    PolicyPlan(
        name="EvilentBackupWriter",
        attached_to=(USER.role, PRODUCT.role),
        actions=("s3:PutObject", "s3:ListBucket"),
        resource="arn:aws:s3:::evilent-backups/*",
    ),
)
