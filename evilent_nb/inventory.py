"""Inventory: what exists in the account, as typed frames.

One function per kind of resource the runbook looks at: CloudFormation stacks (with
their outputs, events and resources), Lambda functions, REST APIs, RDS instances and
snapshots, backup objects in S3, customer-managed IAM policies, log groups and streams,
and CloudWatch alarms. Every listing goes through botocore's paginator, so every page
is fetched (and counted by :func:`evilent_nb.aws.usage`). Every frame follows
:data:`evilent_nb.frames.SCHEMAS` and is empty but typed when nothing matches.

Where a *named* resource does not exist (a stack, a bucket, a log group, a DB
instance), the function returns an empty frame instead of raising: for a report, "the
thing is gone" is data. Any other failure raises through
:func:`evilent_nb.aws.translate_errors` (:class:`~evilent_nb.exceptions.DataSourceError`
or an :class:`~evilent_nb.exceptions.AwsAccessError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import ClientError

from .aws import client, error_code, translate_errors
from .frames import typed_frame
from .timeframe import Window, parse_time, utcnow

__all__ = [
    "alarms",
    "backup_objects",
    "db_instances",
    "db_snapshots",
    "functions",
    "log_groups",
    "log_streams",
    "policies",
    "rest_apis",
    "stack_events",
    "stack_resources",
    "stacks",
]

Item = dict[str, Any]


# -- helpers ---------------------------------------------------------------------------


def _collect(
    service: str,
    operation: str,
    result_key: str,
    *,
    boto3_session: boto3.Session | None,
    missing: Callable[[ClientError], bool] | None = None,
    stop: Callable[[list[Item]], bool] | None = None,
    **params: Any,
) -> list[Item]:
    """Every item of a paginated operation.

    ``missing(exc)`` says whether an error means "the named resource does not exist"
    (then the result is ``[]``); ``stop(page_items)`` ends paging early once the rest
    cannot matter (no further page is requested).
    """
    cli = client(service, boto3_session)
    source = f"{service}.{cli.meta.method_to_api_mapping.get(operation, operation)}"
    items: list[Item] = []
    with translate_errors(source):
        try:
            for page in cli.get_paginator(operation).paginate(**params):
                batch = page.get(result_key) or []
                items.extend(batch)
                if stop is not None and batch and stop(batch):
                    break
        except ClientError as exc:
            if missing is not None and missing(exc):
                return []
            raise
    return items


def _codes(*codes: str) -> Callable[[ClientError], bool]:
    return lambda exc: error_code(exc) in codes


def _stack_missing(exc: ClientError) -> bool:
    # CloudFormation says "Stack with id X does not exist" / "Stack [X] does not exist"
    # with the generic ValidationError code.
    msg = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "ValidationError" and "does not exist" in msg


def _ts(value: Any) -> datetime | None:
    """A botocore timestamp (datetime, ISO string, Lambda's ``+0000`` form) as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = f"{value[:-2]}:{value[-2:]}"  # 2024-01-01T00:00:00.000+0000 -> +00:00
    return parse_time(value)


def _ms(value: Any) -> datetime | None:
    """Epoch milliseconds as UTC (None stays None)."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000.0, UTC)


# -- CloudFormation -----------------------------------------------------------------------


def stacks(
    *,
    name_contains: str | None = None,
    statuses: Iterable[str] | None = None,
    root_only: bool = False,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """CloudFormation stacks with their status and outputs.

    One paginated ``DescribeStacks`` gives both the status and the outputs. Deleted
    stacks (``DELETE_COMPLETE``) are never listed.

    Parameters
    ----------
    name_contains
        Keep stacks whose name contains this text (case-sensitive, like the runbook's
        ``contains(StackName, 'Service')``).
    statuses
        Keep only these ``StackStatus`` values (e.g. ``["CREATE_COMPLETE"]``).
    root_only
        Leave out nested stacks (those with a ``ParentId``).
    boto3_session
        Session to use; default :func:`evilent_nb.aws.ensure_session`.

    Returns
    -------
    pandas.DataFrame
        ``name, status, created, last_updated, status_reason, stack_id, outputs``
        (``outputs``: dict OutputKey -> OutputValue; ``last_updated`` is NaT for a stack
        never updated), in the order AWS lists them.

    Examples
    --------
    >>> stacks(name_contains="Service")[["name", "status"]]  # doctest: +SKIP
                   name           status
    0  UserServiceStack  UPDATE_COMPLETE

    See https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html
    """
    wanted = set(statuses) if statuses is not None else None
    rows = []
    for s in _collect("cloudformation", "describe_stacks", "Stacks", boto3_session=boto3_session):
        name, status = s["StackName"], s.get("StackStatus", "")
        if status == "DELETE_COMPLETE":
            continue
        if name_contains and name_contains not in name:
            continue
        if wanted is not None and status not in wanted:
            continue
        if root_only and s.get("ParentId"):
            continue
        rows.append(
            {
                "name": name,
                "status": status,
                "created": _ts(s.get("CreationTime")),
                "last_updated": _ts(s.get("LastUpdatedTime")),
                "status_reason": s.get("StackStatusReason"),
                "stack_id": s.get("StackId"),
                "outputs": {o["OutputKey"]: o.get("OutputValue") for o in s.get("Outputs") or []},
                "parent_id": s.get("ParentId"),
            }
        )
    return typed_frame(rows, "stacks")


def stack_events(
    stack: str,
    *,
    window: Window | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """A stack's events, newest first.

    AWS lists events newest first, so paging stops at the first page that reaches back
    past ``window.start``: an old stack's long history is not fetched.

    Parameters
    ----------
    stack
        Stack name or id.
    window
        Keep events inside ``[start, end]``; default: every event.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``timestamp, stack, logical_id, physical_id, resource_type, status, reason,
        event_id``, newest first. Empty when the stack does not exist.

    Examples
    --------
    >>> from evilent_nb.timeframe import parse_window
    >>> stack_events("UserServiceStack", window=parse_window("24h"))  # doctest: +SKIP

    See https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html
    """

    def older_than_window(batch: list[Item]) -> bool:
        oldest = _ts(batch[-1].get("Timestamp"))
        return window is not None and oldest is not None and oldest < window.start

    events = _collect(
        "cloudformation",
        "describe_stack_events",
        "StackEvents",
        boto3_session=boto3_session,
        missing=_stack_missing,
        stop=older_than_window,
        StackName=stack,
    )
    rows = []
    for e in events:
        ts = _ts(e.get("Timestamp"))
        if window is not None and ts is not None and not (window.start <= ts <= window.end):
            continue
        rows.append(
            {
                "timestamp": ts,
                "stack": e.get("StackName"),
                "logical_id": e.get("LogicalResourceId"),
                "physical_id": e.get("PhysicalResourceId"),
                "resource_type": e.get("ResourceType"),
                "status": e.get("ResourceStatus"),
                "reason": e.get("ResourceStatusReason"),
                "event_id": e.get("EventId"),
            }
        )
    return typed_frame(rows, "stack_events")


def stack_resources(stack: str, *, boto3_session: boto3.Session | None = None) -> pd.DataFrame:
    """The resources of one stack.

    Parameters
    ----------
    stack
        Stack name or id.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``stack, logical_id, physical_id, resource_type, status, last_updated``. Empty when
        the stack does not exist.

    Examples
    --------
    >>> r = stack_resources("UserServiceStack")  # doctest: +SKIP
    >>> r.loc[r.resource_type == "AWS::Lambda::Function", "physical_id"]  # doctest: +SKIP

    See https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStackResources.html
    """
    items = _collect(
        "cloudformation",
        "list_stack_resources",
        "StackResourceSummaries",
        boto3_session=boto3_session,
        missing=_stack_missing,
        StackName=stack,
    )
    rows = [
        {
            "stack": stack,
            "logical_id": r.get("LogicalResourceId"),
            "physical_id": r.get("PhysicalResourceId"),
            "resource_type": r.get("ResourceType"),
            "status": r.get("ResourceStatus"),
            "last_updated": _ts(r.get("LastUpdatedTimestamp")),
        }
        for r in items
    ]
    return typed_frame(rows, "stack_resources")


# -- Lambda and API Gateway -------------------------------------------------------------


def functions(
    *, name_contains: str | None = None, boto3_session: boto3.Session | None = None
) -> pd.DataFrame:
    """Lambda functions (``ListFunctions``, every page).

    Parameters
    ----------
    name_contains
        Keep functions whose name contains this text (case-sensitive).
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``name, runtime, last_modified, memory_mb, timeout_s, code_size, state, handler,
        arn``. ``runtime`` is <NA> for container images. ``state`` is what ListFunctions
        reports, often <NA> (AWS returns it only from GetFunction; no extra call is made).

    Examples
    --------
    >>> functions(name_contains="Service")[["name", "runtime"]]  # doctest: +SKIP

    See https://docs.aws.amazon.com/lambda/latest/api/API_ListFunctions.html
    """
    rows = []
    for f in _collect("lambda", "list_functions", "Functions", boto3_session=boto3_session):
        if name_contains and name_contains not in f["FunctionName"]:
            continue
        rows.append(
            {
                "name": f["FunctionName"],
                "runtime": f.get("Runtime"),
                "last_modified": _ts(f.get("LastModified")),
                "memory_mb": f.get("MemorySize"),
                "timeout_s": f.get("Timeout"),
                "code_size": f.get("CodeSize"),
                "state": f.get("State"),
                "handler": f.get("Handler"),
                "arn": f.get("FunctionArn"),
            }
        )
    return typed_frame(rows, "functions")


def rest_apis(*, boto3_session: boto3.Session | None = None) -> pd.DataFrame:
    """API Gateway REST APIs (v1), 500 per page.

    Parameters
    ----------
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``id, name, created, description``. ``name`` is the ``ApiName`` metric dimension.

    Examples
    --------
    >>> rest_apis().set_index("id")["name"]  # doctest: +SKIP

    See https://docs.aws.amazon.com/apigateway/latest/api/API_GetRestApis.html
    """
    items = _collect(
        "apigateway",
        "get_rest_apis",
        "items",
        boto3_session=boto3_session,
        PaginationConfig={"PageSize": 500},  # the largest `limit` AWS takes
    )
    rows = [
        {
            "id": a.get("id"),
            "name": a.get("name"),
            "created": _ts(a.get("createdDate")),
            "description": a.get("description"),
        }
        for a in items
    ]
    return typed_frame(rows, "rest_apis")


# -- RDS and backups -------------------------------------------------------------------


def db_instances(
    *, ids: Iterable[str] | None = None, boto3_session: boto3.Session | None = None
) -> pd.DataFrame:
    """RDS DB instances.

    Parameters
    ----------
    ids
        Instance identifiers to describe (one call with a ``db-instance-id`` filter); ids
        that do not exist are simply absent from the result. Default: every instance.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``id, engine, engine_version, status, instance_class, endpoint, created``
        (``endpoint`` is the address, <NA> while the instance is being created).

    Examples
    --------
    >>> db_instances(ids=["evilent-user-service-db"])[["id", "status"]]  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
    """
    params: dict[str, Any] = {}
    if ids is not None:
        wanted = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
        if not wanted:
            return typed_frame([], "db_instances")
        params["Filters"] = [{"Name": "db-instance-id", "Values": wanted}]
    items = _collect(
        "rds",
        "describe_db_instances",
        "DBInstances",
        boto3_session=boto3_session,
        missing=_codes("DBInstanceNotFound", "DBInstanceNotFoundFault"),
        **params,
    )
    rows = [
        {
            "id": d.get("DBInstanceIdentifier"),
            "engine": d.get("Engine"),
            "engine_version": d.get("EngineVersion"),
            "status": d.get("DBInstanceStatus"),
            "instance_class": d.get("DBInstanceClass"),
            "endpoint": (d.get("Endpoint") or {}).get("Address"),
            "created": _ts(d.get("InstanceCreateTime")),
        }
        for d in items
    ]
    return typed_frame(rows, "db_instances")


def db_snapshots(
    *, db: str | None = None, boto3_session: boto3.Session | None = None
) -> pd.DataFrame:
    """RDS DB snapshots, automated and manual.

    Parameters
    ----------
    db
        Only this instance's snapshots; default every instance's. Empty when the instance
        does not exist.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``id, db, created, snapshot_type, status``, newest first (``created`` is NaT
        while a snapshot is being taken).

    Examples
    --------
    >>> db_snapshots(db="evilent-user-service-db").created.max()  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBSnapshots.html
    """
    params: dict[str, Any] = {"DBInstanceIdentifier": db} if db else {}
    items = _collect(
        "rds",
        "describe_db_snapshots",
        "DBSnapshots",
        boto3_session=boto3_session,
        missing=_codes("DBInstanceNotFound", "DBInstanceNotFoundFault"),
        **params,
    )
    rows = [
        {
            "id": s.get("DBSnapshotIdentifier"),
            "db": s.get("DBInstanceIdentifier"),
            "created": _ts(s.get("SnapshotCreateTime")),
            "snapshot_type": s.get("SnapshotType"),
            "status": s.get("Status"),
        }
        for s in items
    ]
    frame = typed_frame(rows, "db_snapshots")
    return frame.sort_values(
        "created", ascending=False, na_position="first", kind="stable"
    ).reset_index(drop=True)


def backup_objects(
    bucket: str, *, prefix: str = "", boto3_session: boto3.Session | None = None
) -> pd.DataFrame:
    """Objects in the backup bucket (``ListObjectsV2``, every page).

    Parameters
    ----------
    bucket
        Bucket name. Empty frame when the bucket does not exist.
    prefix
        Key prefix, e.g. ``"user-service/"``.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``bucket, key, last_modified, size``, in key order.

    Examples
    --------
    >>> backup_objects("evilent-backups", prefix="user-service/").last_modified.max()  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
    """
    items = _collect(
        "s3",
        "list_objects_v2",
        "Contents",
        boto3_session=boto3_session,
        missing=_codes("NoSuchBucket"),
        Bucket=bucket,
        Prefix=prefix or "",
    )
    rows = [
        {
            "bucket": bucket,
            "key": o.get("Key"),
            "last_modified": _ts(o.get("LastModified")),
            "size": o.get("Size"),
        }
        for o in items
    ]
    return typed_frame(rows, "backup_objects")


# -- IAM -------------------------------------------------------------------------------


def policies(*, scope: str = "Local", boto3_session: boto3.Session | None = None) -> pd.DataFrame:
    """IAM managed policies with their attachment counts.

    Parameters
    ----------
    scope
        ``"Local"`` (customer-managed, the default), ``"AWS"`` or ``"All"``.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``name, arn, attachment_count, created, updated``.

    Examples
    --------
    >>> p = policies()  # doctest: +SKIP
    >>> p[p.attachment_count == 0].name.tolist()  # doctest: +SKIP

    See https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListPolicies.html
    """
    items = _collect("iam", "list_policies", "Policies", boto3_session=boto3_session, Scope=scope)
    rows = [
        {
            "name": p.get("PolicyName"),
            "arn": p.get("Arn"),
            "attachment_count": p.get("AttachmentCount"),
            "created": _ts(p.get("CreateDate")),
            "updated": _ts(p.get("UpdateDate")),
        }
        for p in items
    ]
    return typed_frame(rows, "policies")


# -- CloudWatch Logs -------------------------------------------------------------------


def log_groups(
    *, prefix: str | None = None, boto3_session: boto3.Session | None = None
) -> pd.DataFrame:
    """CloudWatch Logs log groups with their retention.

    Parameters
    ----------
    prefix
        Log group name prefix, e.g. ``"/aws/lambda/"``.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``name, retention_days, stored_bytes, created``; ``retention_days`` is <NA> when
        the group never expires.

    Examples
    --------
    >>> g = log_groups(prefix="/aws/lambda/")  # doctest: +SKIP
    >>> g[g.retention_days.isna()].name.tolist()  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html
    """
    params: dict[str, Any] = {"logGroupNamePrefix": prefix} if prefix else {}
    items = _collect(
        "logs", "describe_log_groups", "logGroups", boto3_session=boto3_session, **params
    )
    rows = [
        {
            "name": g.get("logGroupName"),
            "retention_days": g.get("retentionInDays"),
            "stored_bytes": g.get("storedBytes"),
            "created": _ms(g.get("creationTime")),
        }
        for g in items
    ]
    return typed_frame(rows, "log_groups")


def log_streams(
    group: str,
    *,
    older_than: datetime | timedelta | None = None,
    now: datetime | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """The streams of one log group, oldest last event first.

    Parameters
    ----------
    group
        Log group name. Empty frame when the group does not exist.
    older_than
        Keep only streams whose last event is before this instant (a tz-aware
        ``datetime``), or older than this age (a ``timedelta`` before ``now``). A
        stream with no event is judged by its creation time.
    now
        "Now" for a ``timedelta`` age; default the current UTC time.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``log_group, name, last_event, first_event, created`` (``last_event`` and
        ``first_event`` are NaT for a stream with no event).

    Examples
    --------
    >>> from datetime import timedelta
    >>> log_streams("/aws/lambda/UserServiceFn", older_than=timedelta(days=30))  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogStreams.html
    """
    cutoff: datetime | None = None
    if isinstance(older_than, timedelta):
        cutoff = (parse_time(now) if now is not None else utcnow()) - older_than
    elif older_than is not None:
        cutoff = parse_time(older_than)
    # Every page is read: AWS does not say where streams without events sort, and
    # lastEventTimestamp is only eventually consistent, so stopping early could miss some.
    items = _collect(
        "logs",
        "describe_log_streams",
        "logStreams",
        boto3_session=boto3_session,
        missing=_codes("ResourceNotFoundException"),
        logGroupName=group,
        orderBy="LastEventTime",
    )
    rows = []
    for s in items:
        last, created = _ms(s.get("lastEventTimestamp")), _ms(s.get("creationTime"))
        seen = last or created
        if cutoff is not None and (seen is None or seen >= cutoff):
            continue
        rows.append(
            {
                "log_group": group,
                "name": s.get("logStreamName"),
                "last_event": last,
                "first_event": _ms(s.get("firstEventTimestamp")),
                "created": created,
            }
        )
    return typed_frame(rows, "log_streams")


# -- CloudWatch alarms -----------------------------------------------------------------


def alarms(
    *,
    state: str | None = None,
    prefix: str | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """CloudWatch metric alarms.

    Parameters
    ----------
    state
        ``"OK"``, ``"ALARM"`` or ``"INSUFFICIENT_DATA"``; default every state.
    prefix
        Alarm name prefix, e.g. ``"UserService-"``.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``name, state, namespace, metric, dimensions, statistic, threshold, period,
        evaluation_periods, comparison, actions, state_updated, state_reason``
        (``dimensions``: dict Name -> Value; ``actions``: list of the ALARM actions' ARNs;
        ``statistic`` holds the extended statistic, e.g. ``p99``, when that is used;
        namespace and metric are <NA> for metric-math alarms).

    Examples
    --------
    >>> alarms(state="ALARM").name.tolist()  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    """
    params: dict[str, Any] = {}
    if state:
        params["StateValue"] = state
    if prefix:
        params["AlarmNamePrefix"] = prefix
    items = _collect(
        "cloudwatch", "describe_alarms", "MetricAlarms", boto3_session=boto3_session, **params
    )
    rows = [
        {
            "name": a.get("AlarmName"),
            "state": a.get("StateValue"),
            "namespace": a.get("Namespace"),
            "metric": a.get("MetricName"),
            "dimensions": {d["Name"]: d.get("Value") for d in a.get("Dimensions") or []},
            "statistic": a.get("Statistic") or a.get("ExtendedStatistic"),
            "threshold": a.get("Threshold"),
            "period": a.get("Period"),
            "evaluation_periods": a.get("EvaluationPeriods"),
            "comparison": a.get("ComparisonOperator"),
            "actions": list(a.get("AlarmActions") or []),
            "state_updated": _ts(a.get("StateUpdatedTimestamp")),
            "state_reason": a.get("StateReason"),
        }
        for a in items
    ]
    return typed_frame(rows, "alarms")
