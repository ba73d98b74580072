"""Frame schemas and the one helper that builds typed frames.

Every source function returns a :class:`pandas.DataFrame` with the columns and dtypes
listed here, in this order, even when empty. Timestamps are tz-aware UTC
(``datetime64[ns, UTC]``); text is pandas ``string``; nullable integers are ``Int64``.
Columns a function adds beyond its schema (e.g. metric dimensions) come after these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["SCHEMAS", "UTC_TS", "snake", "typed_frame"]

UTC_TS = "datetime64[ns, UTC]"

SCHEMAS: dict[str, dict[str, str]] = {
    # metrics.metric_data: plus one string column per dimension (snake_case, e.g.
    # function_name, api_name, db_instance_identifier) after these. `resource` is the value
    # of the query's first dimension (the function, API or DB instance).
    "metrics": {
        "timestamp": UTC_TS,
        "namespace": "string",
        "metric": "string",
        "stat": "string",
        "label": "string",
        "resource": "string",
        "value": "float64",
    },
    # logs.read_events
    "log_events": {
        "timestamp": UTC_TS,
        "log_group": "string",
        "log_stream": "string",
        "message": "string",
        "event_id": "string",
        "ingestion_time": UTC_TS,
        "level": "string",
        "request_id": "string",
    },
    # logs.error_signatures
    "error_signatures": {
        "signature": "string",
        "count": "int64",
        "first_seen": UTC_TS,
        "last_seen": UTC_TS,
        "example": "string",
        "log_group": "string",
    },
    # cost.cost_and_usage: group-key columns (e.g. `service`) come between `end` and `amount`.
    "cost": {
        "start": UTC_TS,
        "end": UTC_TS,
        "amount": "float64",
        "unit": "string",
        "estimated": "bool",
    },
    # inventory
    "stacks": {
        "name": "string",
        "status": "string",
        "created": UTC_TS,
        "last_updated": UTC_TS,
        "status_reason": "string",
        "stack_id": "string",
        "outputs": "object",  # dict OutputKey -> OutputValue
        "parent_id": "string",  # the parent's stack id for a nested stack, <NA> for a root stack
    },
    "stack_events": {
        "timestamp": UTC_TS,
        "stack": "string",
        "logical_id": "string",
        "physical_id": "string",
        "resource_type": "string",
        "status": "string",
        "reason": "string",
        "event_id": "string",
    },
    "stack_resources": {
        "stack": "string",
        "logical_id": "string",
        "physical_id": "string",
        "resource_type": "string",
        "status": "string",
        "last_updated": UTC_TS,
    },
    "functions": {
        "name": "string",
        "runtime": "string",
        "last_modified": UTC_TS,
        "memory_mb": "Int64",
        "timeout_s": "Int64",
        "code_size": "Int64",
        "state": "string",
        "handler": "string",
        "arn": "string",
    },
    "rest_apis": {
        "id": "string",
        "name": "string",
        "created": UTC_TS,
        "description": "string",
    },
    "db_instances": {
        "id": "string",
        "engine": "string",
        "engine_version": "string",
        "status": "string",
        "instance_class": "string",
        "endpoint": "string",
        "created": UTC_TS,
    },
    "db_snapshots": {
        "id": "string",
        "db": "string",
        "created": UTC_TS,
        "snapshot_type": "string",
        "status": "string",
    },
    "backup_objects": {
        "bucket": "string",
        "key": "string",
        "last_modified": UTC_TS,
        "size": "Int64",
    },
    "policies": {
        "name": "string",
        "arn": "string",
        "attachment_count": "Int64",
        "created": UTC_TS,
        "updated": UTC_TS,
    },
    "log_groups": {
        "name": "string",
        "retention_days": "Int64",  # <NA> = never expire
        "stored_bytes": "Int64",
        "created": UTC_TS,
    },
    "log_streams": {
        "log_group": "string",
        "name": "string",
        "last_event": UTC_TS,
        "first_event": UTC_TS,
        "created": UTC_TS,
    },
    "alarms": {
        "name": "string",
        "state": "string",
        "namespace": "string",
        "metric": "string",
        "dimensions": "object",  # dict Name -> Value
        "statistic": "string",
        "threshold": "float64",
        "period": "Int64",
        "evaluation_periods": "Int64",
        "comparison": "string",
        "actions": "object",  # list of ARNs
        "state_updated": UTC_TS,
        "state_reason": "string",
    },
    # probes.probe
    "probes": {
        "url": "string",
        "status_code": "Int64",
        "ok": "bool",
        "latency_ms": "float64",
        "error": "string",
    },
    # rules: every check returns this
    "findings": {
        "severity": "string",
        "check": "string",
        "service": "string",
        "resource": "string",
        "value": "float64",
        "threshold": "float64",
        "at": UTC_TS,
        "message": "string",
        "playbook": "string",
    },
}


def snake(name: str) -> str:
    """``FunctionName`` -> ``function_name``, ``DBInstanceIdentifier`` -> ``db_instance_identifier``.

    Examples
    --------
    >>> snake("DBInstanceIdentifier")
    'db_instance_identifier'
    """
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (
            not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())
        ):
            out.append("_")
        out.append(ch.lower() if ch.isalnum() else "_")
    return "".join(out).strip("_").replace("__", "_")


def _coerce(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == UTC_TS:
        return pd.to_datetime(series, utc=True, errors="coerce", format="mixed").astype(UTC_TS)
    if dtype == "object":
        return series.astype("object")
    if dtype == "bool":
        return series.fillna(False).astype("bool")
    if dtype in ("Int64", "float64"):
        return pd.to_numeric(series, errors="coerce").astype(dtype)
    return series.astype(dtype)


def typed_frame(
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    schema: str | Mapping[str, str],
    *,
    extra: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Build a frame with exactly the schema's columns (in order) and dtypes.

    Parameters
    ----------
    rows
        Records (dicts) or a frame. Missing columns are filled with nulls.
    schema
        A key of :data:`SCHEMAS` or a ``{column: dtype}`` mapping.
    extra
        More ``{column: dtype}`` placed after the schema's columns.

    Returns
    -------
    pandas.DataFrame
        Typed, with a fresh ``RangeIndex``; empty but typed when ``rows`` is empty.

    Examples
    --------
    >>> typed_frame([], "probes").dtypes["ok"]
    dtype('bool')
    """
    cols = dict(SCHEMAS[schema] if isinstance(schema, str) else schema)
    if extra:
        cols.update(extra)
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for col in cols:
        if col not in df.columns:
            df[col] = pd.NA if cols[col] != "bool" else False
    df = df[list(cols)].reset_index(drop=True)
    for col, dtype in cols.items():
        df[col] = _coerce(df[col], dtype)
    return df
