"""The runbook's maintenance writes, as plans first: log retention and stale log streams.

Safety (DESIGN.md): nothing here writes unless asked. Each write comes in two steps,

1. ``plan_*`` builds a plan: a frame a person can read, one row per write;
2. ``apply_*(plan, apply=False)`` is a dry run that makes **no AWS call at all**; only
   ``apply=True`` performs exactly the planned rows, one call each.

Plans and results share one small shape so a notebook can show them alike:

- every **plan** starts with ``action`` (the verb: ``set_retention``, ``delete``, ``create``,
  ``update``) and ``target`` (the resource acted on, as one string), then its own columns;
- every **result** has ``action, target, applied, status`` and then the plan's key columns.
  ``applied`` is True only for a write that AWS accepted; ``status`` is ``"planned"`` (dry
  run), ``"done"`` or ``"error: <one line>"``. A failed row does not stop the others.

The alarms of the runbook (:mod:`evilent_nb.alarms`) follow the same shape. IAM policies
are only ever listed (:func:`evilent_nb.inventory.policies`), never deleted here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import boto3
import pandas as pd

from .aws import client, translate_errors
from .exceptions import EvilentNbError, ParameterError
from .frames import UTC_TS, typed_frame
from .inventory import log_streams  # the one reader of DescribeLogStreams
from .timeframe import utcnow

__all__ = [
    "RESULT_SCHEMA",
    "RETENTION_DAYS",
    "apply_retention",
    "apply_stale_stream_deletion",
    "plan_retention",
    "plan_stale_stream_deletion",
    "run_plan",
    "stale_streams",
]

#: The columns every result frame starts with.
RESULT_SCHEMA: dict[str, str] = {
    "action": "string",
    "target": "string",
    "applied": "bool",
    "status": "string",
}

#: The retention values CloudWatch Logs accepts (PutRetentionPolicy).
RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_RETENTION_PLAN = {
    "action": "string",
    "target": "string",
    "log_group": "string",
    "current_retention_days": "Int64",  # <NA> = never expire
    "new_retention_days": "Int64",
}
_STALE = {
    "log_group": "string",
    "name": "string",
    "last_event": UTC_TS,
    "age_days": "float64",
    "created": UTC_TS,
}
_STREAM_PLAN = {
    "action": "string",
    "target": "string",
    "log_group": "string",
    "log_stream": "string",
    "last_event": UTC_TS,
    "age_days": "float64",
}


def run_plan(
    plan: pd.DataFrame,
    write: Callable[[Mapping[str, Any]], None],
    *,
    apply: bool,
    keys: Iterable[str] = (),
) -> pd.DataFrame:
    """Perform a plan's rows with ``write`` (only when ``apply``), and record each outcome.

    The one loop behind every ``apply_*`` function: with ``apply=False`` ``write`` is never
    called, so no client is even created.

    Parameters
    ----------
    plan
        A plan frame (``action``, ``target``, ...).
    write
        Called with each row as a dict; raises an :class:`~evilent_nb.exceptions.EvilentNbError`
        on failure (wrap AWS calls in :func:`~evilent_nb.aws.translate_errors`).
    apply
        Really write.
    keys
        Plan columns copied into the result after the common ones.

    Returns
    -------
    pandas.DataFrame
        ``action, target, applied, status`` then ``keys``; one row per plan row.

    Examples
    --------
    >>> plan = pd.DataFrame({"action": ["delete"], "target": ["g:s"]})
    >>> run_plan(plan, print, apply=False)["status"].tolist()
    ['planned']
    """
    keys = list(keys)
    rows = []
    for rec in plan.to_dict("records"):
        row: dict[str, Any] = {"action": rec["action"], "target": rec["target"]}
        row.update({k: rec.get(k) for k in keys})
        if not apply:
            row.update(applied=False, status="planned")
        else:
            try:
                write(rec)
            except EvilentNbError as exc:
                row.update(applied=False, status=f"error: {exc}")
            else:
                row.update(applied=True, status="done")
        rows.append(row)
    return typed_frame(rows, RESULT_SCHEMA, extra={k: "string" for k in keys})


# Log retention ------------------------------------------------------------------------


def plan_retention(log_groups: pd.DataFrame, *, days: int = 30) -> pd.DataFrame:
    """Plan the runbook's monthly "every log group at N days".

    Parameters
    ----------
    log_groups
        Log groups as from :func:`evilent_nb.inventory.log_groups` (``name``,
        ``retention_days`` with <NA> for never-expire).
    days
        The retention wanted; one of :data:`RETENTION_DAYS` (AWS rejects any other).

    Returns
    -------
    pandas.DataFrame
        ``action`` (``set_retention``), ``target`` (the group), ``log_group``,
        ``current_retention_days`` (<NA> = never expire), ``new_retention_days``: one row per
        group whose retention is not ``days``, never-expire included; sorted by group.

    Raises
    ------
    ParameterError
        ``days`` is not a retention AWS accepts.

    Examples
    --------
    >>> groups = pd.DataFrame({"name": ["/aws/lambda/a", "/aws/lambda/b"],
    ...                        "retention_days": pd.array([pd.NA, 30], dtype="Int64")})
    >>> plan_retention(groups, days=30)[["target", "current_retention_days"]].values.tolist()
    [['/aws/lambda/a', <NA>]]
    """
    if days not in RETENTION_DAYS:
        raise ParameterError(
            f"retention_days={days!r} is not a retention CloudWatch Logs accepts; "
            f"use one of {', '.join(map(str, RETENTION_DAYS))}"
        )
    rows = []
    for rec in log_groups.to_dict("records"):
        current = rec.get("retention_days")
        current = None if current is None or pd.isna(current) else int(current)
        if current != days:
            rows.append({
                "action": "set_retention",
                "target": rec["name"],
                "log_group": rec["name"],
                "current_retention_days": current,
                "new_retention_days": days,
            })
    rows.sort(key=lambda r: r["log_group"])
    return typed_frame(rows, _RETENTION_PLAN)


def apply_retention(
    plan: pd.DataFrame,
    *,
    apply: bool = False,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Set the planned retentions (PutRetentionPolicy), only with ``apply=True``.

    Parameters
    ----------
    plan
        From :func:`plan_retention`.
    apply
        False (default): a dry run, no AWS call at all.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``action, target, applied, status, log_group`` (see the module docstring).

    Examples
    --------
    >>> apply_retention(plan, apply=True)      # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
    """

    def write(rec: Mapping[str, Any]) -> None:
        with translate_errors("logs.PutRetentionPolicy"):
            client("logs", boto3_session).put_retention_policy(
                logGroupName=rec["log_group"], retentionInDays=int(rec["new_retention_days"])
            )

    return run_plan(plan, write, apply=apply, keys=("log_group",))


# Stale log streams --------------------------------------------------------------------


def _group_names(log_groups: pd.DataFrame | Iterable[str]) -> list[str]:
    if isinstance(log_groups, pd.DataFrame):
        return [str(n) for n in log_groups["name"].dropna()]
    if isinstance(log_groups, str):
        return [log_groups]
    return [str(n) for n in log_groups]


def stale_streams(
    log_groups: pd.DataFrame | Iterable[str],
    *,
    stale_days: int = 30,
    now: datetime | None = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Log streams whose last event is older than ``stale_days`` (the runbook's weekly clean-up).

    A stream with no event at all counts from its creation time. A group that does not
    exist (a function that never ran has none) holds nothing stale. The streams are read
    with :func:`evilent_nb.inventory.log_streams` (DescribeLogStreams, every page).

    Parameters
    ----------
    log_groups
        A log-groups frame (its ``name`` column) or group names.
    stale_days
        Age in days beyond which a stream is stale (strictly older).
    now
        Reference time (tz-aware); default now.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``log_group, name`` (the stream), ``last_event`` (NaT when it has none), ``age_days``
        (from the last event, or from creation; 2 decimals), ``created``; sorted by group,
        then oldest first.

    Examples
    --------
    >>> stale_streams(["/aws/lambda/UserServiceStack-ServiceUserServiceFunction"])  # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogStreams.html
    """
    ref_now = pd.Timestamp(now if now is not None else utcnow())
    if ref_now.tzinfo is None:
        raise ParameterError("now must be timezone-aware (UTC)")
    cutoff = ref_now - timedelta(days=stale_days)
    frames = [
        log_streams(group, older_than=cutoff.to_pydatetime(), boto3_session=boto3_session)
        for group in _group_names(log_groups)
    ]
    rows: list[dict[str, Any]] = []
    for frame in frames:
        for rec in frame.to_dict("records"):
            seen = rec["last_event"] if not pd.isna(rec["last_event"]) else rec["created"]
            rows.append({
                "log_group": rec["log_group"],
                "name": rec["name"],
                "last_event": rec["last_event"],
                "age_days": round((ref_now - seen) / timedelta(days=1), 2),
                "created": rec["created"],
                "_seen": seen,
            })
    rows.sort(key=lambda r: (r["log_group"], r["_seen"], r["name"]))
    return typed_frame(rows, _STALE)


def plan_stale_stream_deletion(stale: pd.DataFrame) -> pd.DataFrame:
    """Plan deleting the given stale streams.

    Parameters
    ----------
    stale
        From :func:`stale_streams` (``log_group``, ``name``, ``last_event``, ``age_days``).

    Returns
    -------
    pandas.DataFrame
        ``action`` (``delete``), ``target`` (``"<log group>:<stream>"``: neither part can hold
        a colon), ``log_group``, ``log_stream``, ``last_event``, ``age_days``; one row per stream.

    Examples
    --------
    >>> plan_stale_stream_deletion(stale_streams(groups))      # doctest: +SKIP
    """
    rows = [
        {
            "action": "delete",
            "target": f"{rec['log_group']}:{rec['name']}",
            "log_group": rec["log_group"],
            "log_stream": rec["name"],
            "last_event": rec.get("last_event"),
            "age_days": rec.get("age_days"),
        }
        for rec in stale.to_dict("records")
    ]
    return typed_frame(rows, _STREAM_PLAN)


def apply_stale_stream_deletion(
    plan: pd.DataFrame,
    *,
    apply: bool = False,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Delete the planned log streams (DeleteLogStream), only with ``apply=True``.

    Parameters
    ----------
    plan
        From :func:`plan_stale_stream_deletion`.
    apply
        False (default): a dry run, no AWS call at all.
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``action, target, applied, status, log_group, log_stream``.

    Examples
    --------
    >>> apply_stale_stream_deletion(plan)["status"].unique()      # doctest: +SKIP
    array(['planned'], dtype=object)

    See https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DeleteLogStream.html
    """

    def write(rec: Mapping[str, Any]) -> None:
        with translate_errors("logs.DeleteLogStream"):
            client("logs", boto3_session).delete_log_stream(
                logGroupName=rec["log_group"], logStreamName=rec["log_stream"]
            )

    return run_plan(plan, write, apply=apply, keys=("log_group", "log_stream"))
