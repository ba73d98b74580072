"""The least-privilege IAM policy for the reports.

``evilent-nb iam-policy`` prints :func:`iam_policy`: exactly the read actions the reports
use. The only writes in the package are the maintenance report's plans under
``apply=true`` (log retention, stale log streams, the runbook's alarms); they appear as
a second, separate statement only when asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAINTENANCE_WRITE_ACTIONS", "READ_ACTIONS", "iam_policy"]

#: Every AWS action a report reads with.
READ_ACTIONS: tuple[str, ...] = (
    "apigateway:GET",
    "ce:GetCostAndUsage",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
    "iam:ListPolicies",
    "lambda:GetFunctionConfiguration",
    "lambda:ListFunctions",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetQueryResults",
    "logs:StartQuery",
    "logs:StopQuery",
    "rds:DescribeDBInstances",
    "rds:DescribeDBSnapshots",
    "s3:ListBucket",
    "sns:ListTopics",
    "sts:GetCallerIdentity",
)

#: What ``maintenance`` with ``apply=true`` writes (retention, stale streams, alarms).
MAINTENANCE_WRITE_ACTIONS: tuple[str, ...] = (
    "cloudwatch:PutMetricAlarm",
    "logs:DeleteLogStream",
    "logs:PutRetentionPolicy",
)


def iam_policy(*, with_maintenance_writes: bool = False) -> dict[str, Any]:
    """The IAM policy document for the reports.

    Parameters
    ----------
    with_maintenance_writes
        Add a second statement with the writes of ``maintenance`` under ``apply=true``.

    Returns
    -------
    dict
        A policy document (``Version``, ``Statement``), ready for ``json.dumps``.

    Examples
    --------
    >>> [s["Sid"] for s in iam_policy(with_maintenance_writes=True)["Statement"]]
    ['EvilentNbReportsReadOnly', 'EvilentNbMaintenanceApply']
    """
    statements: list[dict[str, Any]] = [
        {"Sid": "EvilentNbReportsReadOnly", "Effect": "Allow", "Action": sorted(READ_ACTIONS), "Resource": "*"}
    ]
    if with_maintenance_writes:
        statements.append(
            {
                "Sid": "EvilentNbMaintenanceApply",
                "Effect": "Allow",
                "Action": sorted(MAINTENANCE_WRITE_ACTIONS),
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
