"""The least-privilege IAM policy for the reports.

``evilent-nb iam-policy`` prints :func:`iam_policy`: exactly the read actions the four
reports (health, cost, incident, maintenance) and the runner's pre-flight call, nothing
else. :data:`READ_OPERATIONS` lists each AWS operation they call (``service.Operation``, as
:func:`evilent_nb.aws.usage` counts it) with the IAM action AWS authorizes it by;
``tests/test_iam.py`` runs every report against the sandbox and checks that the operations
called are exactly these, then runs the reports again as a user holding only this policy
with moto enforcing IAM.

The only writes in the package are the maintenance report's plans under ``apply=true``
(log retention, stale log streams, the runbook's alarms, :data:`WRITE_OPERATIONS`); they
appear as a separate statement only when asked for. IAM policies are never deleted.

Notes on the action names (they are AWS's, for real AWS):

- CloudWatch is ``cloudwatch:<Action>``. moto checks it as ``monitoring:<Action>`` (the
  signing name); the printed policy does **not** need ``monitoring:`` twins, only the test
  adds them for moto.
- API Gateway authorizes by HTTP verb and path: ``GetRestApis`` is ``apigateway:GET`` on
  ``arn:aws:apigateway:<region>::/restapis``. It gets its own statement scoped to that path,
  because ``apigateway:GET`` on ``*`` would also read API key values. (moto checks it as
  ``apigateway:GetRestApis`` on ``*``; again only the test adds that.)
- S3 ``ListObjectsV2`` is ``s3:ListBucket`` (on the bucket).
- ``sts:GetCallerIdentity`` (the runner's pre-flight) needs no permission on AWS and cannot
  be denied; it is listed because it is called.
- Writing a report's output to ``s3://`` (``-o s3://...``) needs ``s3:PutObject`` on that
  prefix: that is the runner's output, not a report's read, and is not included.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTION_OF",
    "MAINTENANCE_WRITE_ACTIONS",
    "READ_ACTIONS",
    "READ_OPERATIONS",
    "WRITE_OPERATIONS",
    "iam_policy",
]

#: Every AWS operation the reports and the runner's pre-flight call -> its IAM action.
READ_OPERATIONS: dict[str, str] = {
    "apigateway.GetRestApis": "apigateway:GET",
    "ce.GetCostAndUsage": "ce:GetCostAndUsage",
    "cloudformation.DescribeStackEvents": "cloudformation:DescribeStackEvents",
    "cloudformation.DescribeStacks": "cloudformation:DescribeStacks",
    "cloudformation.ListStackResources": "cloudformation:ListStackResources",
    "cloudwatch.DescribeAlarms": "cloudwatch:DescribeAlarms",
    "cloudwatch.GetMetricData": "cloudwatch:GetMetricData",
    "iam.ListPolicies": "iam:ListPolicies",
    "lambda.ListFunctions": "lambda:ListFunctions",
    "logs.DescribeLogGroups": "logs:DescribeLogGroups",
    "logs.DescribeLogStreams": "logs:DescribeLogStreams",
    "logs.FilterLogEvents": "logs:FilterLogEvents",
    "rds.DescribeDBInstances": "rds:DescribeDBInstances",
    "rds.DescribeDBSnapshots": "rds:DescribeDBSnapshots",
    "s3.ListObjectsV2": "s3:ListBucket",
    "sns.ListTopics": "sns:ListTopics",
    "sts.GetCallerIdentity": "sts:GetCallerIdentity",
}

#: What ``maintenance`` with ``apply=true`` calls to write -> its IAM action.
WRITE_OPERATIONS: dict[str, str] = {
    "cloudwatch.PutMetricAlarm": "cloudwatch:PutMetricAlarm",
    "logs.DeleteLogStream": "logs:DeleteLogStream",
    "logs.PutRetentionPolicy": "logs:PutRetentionPolicy",
}

#: Every operation the package calls -> the IAM action it needs.
ACTION_OF: dict[str, str] = {**READ_OPERATIONS, **WRITE_OPERATIONS}

#: Every AWS action a report reads with (sorted).
READ_ACTIONS: tuple[str, ...] = tuple(sorted(set(READ_OPERATIONS.values())))

#: What ``maintenance`` with ``apply=true`` writes (retention, stale streams, alarms).
MAINTENANCE_WRITE_ACTIONS: tuple[str, ...] = tuple(sorted(set(WRITE_OPERATIONS.values())))

# Actions that AWS authorizes on a narrower resource than "*".
_RESOURCES: dict[str, list[str]] = {
    # GET /restapis only: GET on "*" would also reveal API key values (/apikeys?includeValues).
    "apigateway:GET": ["arn:aws:apigateway:*::/restapis"],
}


def iam_policy(*, with_maintenance_writes: bool = False) -> dict[str, Any]:
    """The IAM policy document for the reports.

    Statements: ``EvilentNbReportsReadOnly`` (every read action that authorizes on ``*``),
    ``EvilentNbListRestApis`` (``apigateway:GET`` on ``/restapis`` only) and, when asked,
    ``EvilentNbMaintenanceApply``. Together they grant exactly :data:`READ_ACTIONS` (plus
    :data:`MAINTENANCE_WRITE_ACTIONS`).

    Parameters
    ----------
    with_maintenance_writes
        Add a statement with the writes of ``maintenance`` under ``apply=true``.

    Returns
    -------
    dict
        A policy document (``Version``, ``Statement``), ready for ``json.dumps``.

    Examples
    --------
    >>> [s["Sid"] for s in iam_policy(with_maintenance_writes=True)["Statement"]]
    ['EvilentNbReportsReadOnly', 'EvilentNbListRestApis', 'EvilentNbMaintenanceApply']
    >>> iam_policy()["Statement"][1]["Resource"]
    ['arn:aws:apigateway:*::/restapis']
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EvilentNbReportsReadOnly",
            "Effect": "Allow",
            "Action": [a for a in READ_ACTIONS if a not in _RESOURCES],
            "Resource": "*",
        },
        {
            "Sid": "EvilentNbListRestApis",
            "Effect": "Allow",
            "Action": ["apigateway:GET"],
            "Resource": list(_RESOURCES["apigateway:GET"]),
        },
    ]
    if with_maintenance_writes:
        statements.append(
            {
                "Sid": "EvilentNbMaintenanceApply",
                "Effect": "Allow",
                "Action": list(MAINTENANCE_WRITE_ACTIONS),
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
