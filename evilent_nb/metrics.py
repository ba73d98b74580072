"""CloudWatch metrics as one long, tidy frame, pulled in as few calls as AWS allows.

A :class:`MetricQuery` names one metric of one resource with one statistic. The presets
(:func:`lambda_metrics`, :func:`apigw_metrics`, :func:`rds_metrics`) return lists of queries
for a whole estate, and :func:`metric_data` sends them through GetMetricData, up to 500
queries per call, so the estate costs ``ceil(queries / 500)`` calls (plus a page per
``NextToken``). The helpers (:func:`pivot_wide`, :func:`error_rate`,
:func:`apigw_5xx_rate`) work client-side on the frame and make no requests.

AWS reference: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd

from . import aws
from .exceptions import ParameterError
from .frames import SCHEMAS, UTC_TS, snake, typed_frame
from .timeframe import MAX_QUERIES_PER_CALL, Window, choose_period, parse_time, parse_window, utcnow

__all__ = [
    "APIGW_STATS",
    "LAMBDA_STATS",
    "RDS_STATS",
    "MetricQuery",
    "apigw_5xx_rate",
    "apigw_metrics",
    "error_rate",
    "lambda_metrics",
    "metric_data",
    "pivot_wide",
    "rds_metrics",
]

#: (metric, stat) pairs of each preset, from the runbook's key metrics.
LAMBDA_STATS: tuple[tuple[str, str], ...] = (
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("Duration", "Average"),
    ("Duration", "Maximum"),
)
APIGW_STATS: tuple[tuple[str, str], ...] = (
    ("Count", "Sum"),
    ("4XXError", "Sum"),
    ("5XXError", "Sum"),
    ("Latency", "Average"),
)
RDS_STATS: tuple[tuple[str, str], ...] = (
    ("DatabaseConnections", "Average"),
    ("DatabaseConnections", "Maximum"),
    ("CPUUtilization", "Average"),
    ("FreeStorageSpace", "Minimum"),
)

#: Result statuses after which a query's data is known to be missing.
_FAILED_STATUSES = frozenset({"InternalError", "Forbidden"})


@dataclass(frozen=True)
class MetricQuery:
    """One metric of one resource with one statistic.

    Parameters
    ----------
    namespace
        ``AWS/Lambda``, ``AWS/ApiGateway``, ``AWS/RDS`` ...
    metric
        Metric name, e.g. ``Errors``.
    dimensions
        ``{name: value}``; the first dimension names the resource (its value becomes the
        frame's ``resource``). Stored as a tuple of ``(name, value)`` pairs, in the given
        order, so that a query is hashable.
    stat
        ``Sum``, ``Average``, ``Maximum``, ``Minimum``, ``SampleCount`` or ``pNN``.
    label
        Label for the frame's ``label`` column; default ``"<resource> <metric> <stat>"``.

    Examples
    --------
    >>> q = MetricQuery("AWS/Lambda", "Errors", {"FunctionName": "f"}, "Sum")
    >>> q.resource, q.display_label
    ('f', 'f Errors Sum')
    """

    namespace: str
    metric: str
    dimensions: Mapping[str, str] | tuple[tuple[str, str], ...]
    stat: str
    label: str | None = None

    def __post_init__(self) -> None:
        dims = self.dimensions
        pairs = tuple(dims.items()) if isinstance(dims, Mapping) else tuple(tuple(p) for p in dims or ())
        object.__setattr__(self, "dimensions", tuple((str(k), str(v)) for k, v in pairs))

    @property
    def dimension_map(self) -> dict[str, str]:
        """The dimensions as a dict."""
        return dict(self.dimensions)

    @property
    def resource(self) -> str | None:
        """The first dimension's value (the function, API or DB instance), if any."""
        return self.dimensions[0][1] if self.dimensions else None

    @property
    def display_label(self) -> str:
        """``label`` or ``"<resource> <metric> <stat>"``."""
        if self.label:
            return self.label
        return " ".join(p for p in (self.resource, self.metric, self.stat) if p)

    def to_api(self, query_id: str, period: int) -> dict[str, Any]:
        """The ``MetricDataQuery`` structure for GetMetricData."""
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": int(period),
                "Stat": self.stat,
            },
            "Label": self.display_label,
            "ReturnData": True,
        }


def _names(items: str | Iterable[str]) -> list[str]:
    return [items] if isinstance(items, str) else list(items)


def _preset(namespace: str, dimension: str, names: str | Iterable[str], stats: Iterable[tuple[str, str]],
            extra: Mapping[str, str] | None = None) -> list[MetricQuery]:
    stats = tuple(stats)
    return [
        MetricQuery(namespace, metric, {dimension: name, **(extra or {})}, stat)
        for name in _names(names)
        for metric, stat in stats
    ]


def lambda_metrics(functions: str | Iterable[str]) -> list[MetricQuery]:
    """Queries for the runbook's Lambda metrics of each function.

    Invocations, Errors and Throttles as Sum; Duration as Average and Maximum (ms);
    dimension ``FunctionName``.

    Examples
    --------
    >>> [(q.metric, q.stat) for q in lambda_metrics(["f"])][:2]
    [('Invocations', 'Sum'), ('Errors', 'Sum')]
    """
    return _preset("AWS/Lambda", "FunctionName", functions, LAMBDA_STATS)


def apigw_metrics(apis: str | Iterable[str], *, stage: str | None = None) -> list[MetricQuery]:
    """Queries for the runbook's API Gateway (REST) metrics of each API.

    Count, 4XXError and 5XXError as Sum; Latency as Average (ms); dimension ``ApiName``
    (the API's *name*), plus ``Stage`` when ``stage`` is given.

    Examples
    --------
    >>> len(apigw_metrics(["UserServiceApi", "ProductServiceApi"]))
    8
    """
    return _preset("AWS/ApiGateway", "ApiName", apis, APIGW_STATS, {"Stage": stage} if stage else None)


def rds_metrics(instances: str | Iterable[str]) -> list[MetricQuery]:
    """Queries for the runbook's RDS metrics of each DB instance.

    DatabaseConnections as Average and Maximum, CPUUtilization as Average (%),
    FreeStorageSpace as Minimum (bytes); dimension ``DBInstanceIdentifier``.

    Examples
    --------
    >>> rds_metrics("evilent-user-service-db")[0].metric
    'DatabaseConnections'
    """
    return _preset("AWS/RDS", "DBInstanceIdentifier", instances, RDS_STATS)


def _unique(queries: Iterable[MetricQuery]) -> list[MetricQuery]:
    return list(dict.fromkeys(queries))


def _aligned(win: Window, period: int) -> tuple[datetime, datetime]:
    """The window widened to whole periods counted from the epoch (UTC)."""
    lo = int(win.start.timestamp()) // period * period
    hi = -(-math.ceil(win.end.timestamp()) // period) * period
    return datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)


#: High-resolution periods (seconds) AWS accepts besides multiples of 60; their data is
#: kept 3 hours.
_HIGH_RES_PERIODS = (1, 5, 10, 20, 30)
_HIGH_RES_RETENTION = timedelta(hours=3)


def _tier(start: datetime, now: datetime) -> int:
    """The period every datapoint starting at ``start`` must be a multiple of (retention tiers)."""
    age = now - start
    if age <= timedelta(days=15):
        return 60
    if age <= timedelta(days=63):
        return 300
    return 3600


def _retention_period(win: Window, period: int, now: datetime) -> int:
    """``period`` rounded up to what AWS still holds data for at the window's (aligned) start.

    Past 15 days AWS keeps 5-minute data only, past 63 days hourly data only; a period
    that is not a multiple of the tier's returns *no* datapoints (and no error), so a
    caller's ``period=60`` for a window 20 days back becomes 300. The aligned start is
    rechecked because aligning can move it past a tier boundary.
    """
    if period < 60 and period in _HIGH_RES_PERIODS and now - win.start <= _HIGH_RES_RETENTION:
        return period
    for _ in range(3):
        base = _tier(_aligned(win, period)[0], now)
        fixed = -(-period // base) * base
        if fixed == period:
            break
        period = fixed
    return period


def metric_data(
    queries: Iterable[MetricQuery],
    window: Window | str,
    *,
    period: int | None = None,
    now: Any = None,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Pull metric queries through GetMetricData, up to 500 per call, into one long frame.

    Identical queries are sent once. Each call asks ``ScanBy=TimestampAscending`` and
    follows ``NextToken`` to the end (results with ``PartialData`` continue on the next
    page; their pages are merged per query). ``StartTime`` is the window's start rounded
    down to a multiple of the period and ``EndTime`` its end rounded up (AWS recommends
    period-aligned times; every datapoint then starts on a period boundary, e.g. on the
    hour, whatever the request time). A query whose status is
    ``InternalError`` or ``Forbidden`` does not stop the pull: it is listed in
    ``frame.attrs["incomplete"]`` and whatever it returned is kept.

    Parameters
    ----------
    queries
        The metric queries, e.g. ``lambda_metrics(fns) + apigw_metrics(apis)``.
    window
        A :class:`~evilent_nb.timeframe.Window` or a window spec (``24h``, ``START/END``).
    period
        Seconds per datapoint; default :func:`~evilent_nb.timeframe.choose_period` for the
        window and the number of queries (retention tiers and the 100,800-datapoint cap).
        A given period is rounded up to what CloudWatch still keeps for the window's start
        (a multiple of 300 s past 15 days, of 3600 s past 63 days; 1, 5, 10, 20 or 30 s only
        within 3 hours, else a multiple of 60): a period AWS holds no data for would return
        an empty frame without any error. ``attrs["period"]`` is the period used and
        ``attrs["period_requested"]`` the one given.
    now
        The reference "now" for the retention tiers (default: the current time). Reports
        pass their frozen one so that a replay asks for the same period.
    boto3_session
        Session to use; default the standard chain.

    Returns
    -------
    pandas.DataFrame
        One row per datapoint, schema ``SCHEMAS["metrics"]``: ``timestamp`` (period start,
        UTC), ``namespace``, ``metric``, ``stat``, ``label``, ``resource`` (the first
        dimension's value), ``value`` (float); then one ``string`` column per dimension
        name used by any query, snake_case (``function_name``, ``api_name``,
        ``db_instance_identifier``, ``stage``; ``dim_<name>`` if it would shadow a column
        above), ``<NA>`` where a query lacks it. Sorted by
        namespace, metric, stat, resource, timestamp. ``attrs``: ``period``, ``window``
        (ISO dict), ``incomplete`` (list of dicts: ``id``, ``label``, ``namespace``,
        ``metric``, ``stat``, ``resource``, ``status``), ``messages`` (list of dicts:
        ``id`` or ``None`` for call-level messages, ``code``, ``value``).

    Raises
    ------
    DataSourceError
        The call failed past its retries (source ``cloudwatch.GetMetricData``).
    AwsAccessError
        No credentials, access denied, endpoint unreachable.

    Examples
    --------
    >>> frame = metric_data(lambda_metrics(["UserServiceFunction"]), "24h", period=3600)  # doctest: +SKIP
    >>> frame.query("metric == 'Errors'")[["timestamp", "resource", "value"]]           # doctest: +SKIP
    """
    ref = parse_time(now) if now is not None else utcnow()
    win = window if isinstance(window, Window) else parse_window(window, now=ref)
    todo = _unique(queries)
    requested = int(period) if period is not None else None
    if requested is not None and requested <= 0:
        raise ParameterError(f"period must be a positive number of seconds, not {period!r}")
    period = _retention_period(win, requested or choose_period(win, len(todo), now=ref), ref)
    start, end = _aligned(win, period)
    # Ids are unique across the whole pull, so that pages of one chunk never mix.
    by_id = {f"m{i}": q for i, q in enumerate(todo)}
    timestamps: dict[str, list[Any]] = {qid: [] for qid in by_id}
    values: dict[str, list[float]] = {qid: [] for qid in by_id}
    statuses: dict[str, set[str]] = {qid: set() for qid in by_id}
    messages: list[dict[str, Any]] = []

    if by_id:
        cw = aws.client("cloudwatch", boto3_session)
        paginator = cw.get_paginator("get_metric_data")
        ids = list(by_id)
        for lo in range(0, len(ids), MAX_QUERIES_PER_CALL):
            chunk = ids[lo : lo + MAX_QUERIES_PER_CALL]
            with aws.translate_errors("cloudwatch.GetMetricData"):
                pages = paginator.paginate(
                    MetricDataQueries=[by_id[qid].to_api(qid, period) for qid in chunk],
                    StartTime=start,
                    EndTime=end,
                    ScanBy="TimestampAscending",
                )
                for page in pages:
                    for msg in page.get("Messages") or ():
                        messages.append({"id": None, "code": msg.get("Code"), "value": msg.get("Value")})
                    for result in page.get("MetricDataResults") or ():
                        qid = result.get("Id")
                        if qid not in by_id:
                            continue
                        timestamps[qid].extend(result.get("Timestamps") or ())
                        values[qid].extend(result.get("Values") or ())
                        statuses[qid].add(result.get("StatusCode") or "Complete")
                        for msg in result.get("Messages") or ():
                            messages.append({"id": qid, "code": msg.get("Code"), "value": msg.get("Value")})

    dim_names = list(dict.fromkeys(name for q in todo for name, _ in q.dimensions))
    # A dimension that would shadow a schema column (e.g. "Resource") gets a dim_ prefix.
    dim_cols = {n: (f"dim_{snake(n)}" if snake(n) in SCHEMAS["metrics"] else snake(n)) for n in dim_names}
    rows: list[dict[str, Any]] = []
    for qid, q in by_id.items():
        base = {
            "namespace": q.namespace,
            "metric": q.metric,
            "stat": q.stat,
            "label": q.display_label,
            "resource": q.resource,
            **{dim_cols[k]: v for k, v in q.dimensions},
        }
        for ts, value in zip(timestamps[qid], values[qid], strict=False):
            rows.append({**base, "timestamp": ts, "value": value})

    frame = typed_frame(rows, "metrics", extra={col: "string" for col in dim_cols.values()})
    frame = frame.sort_values(
        ["namespace", "metric", "stat", "resource", "timestamp"], kind="stable", na_position="last"
    ).reset_index(drop=True)
    frame.attrs["period"] = period
    frame.attrs["period_requested"] = requested
    frame.attrs["window"] = win.to_dict()
    frame.attrs["incomplete"] = [
        {
            "id": qid,
            "label": by_id[qid].display_label,
            "namespace": by_id[qid].namespace,
            "metric": by_id[qid].metric,
            "stat": by_id[qid].stat,
            "resource": by_id[qid].resource,
            "status": sorted(statuses[qid] & _FAILED_STATUSES)[0],
        }
        for qid in by_id
        if statuses[qid] & _FAILED_STATUSES
    ]
    frame.attrs["messages"] = messages
    return frame


# Client-side helpers ---------------------------------------------------------------------


def pivot_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (timestamp, resource), one column per metric.

    A metric that appears with one statistic only is named by the metric (``Errors``);
    a metric that appears with several is split into ``Metric:stat`` columns
    (``Duration:Average``, ``Duration:Maximum``). Cells without a datapoint are NaN.

    Parameters
    ----------
    frame
        A :func:`metric_data` frame.

    Returns
    -------
    pandas.DataFrame
        Indexed by (``timestamp``, ``resource``), sorted; float columns sorted by name.

    Raises
    ------
    ValueError
        When two rows land in the same cell (e.g. one metric name with the same resource
        in two namespaces): pivot the namespaces separately.

    Examples
    --------
    >>> wide = pivot_wide(metric_data(lambda_metrics(fns), "24h"))  # doctest: +SKIP
    >>> wide[["Invocations", "Errors", "Duration:Maximum"]]          # doctest: +SKIP
    """
    index = pd.MultiIndex.from_arrays(
        [pd.Series([], dtype=UTC_TS), pd.Series([], dtype="string")], names=["timestamp", "resource"]
    )
    if frame.empty:
        return pd.DataFrame(index=index)
    stats_per_metric = frame.groupby("metric", observed=True)["stat"].nunique()
    multi = set(stats_per_metric[stats_per_metric > 1].index)
    column = [f"{m}:{s}" if m in multi else str(m) for m, s in zip(frame["metric"], frame["stat"], strict=True)]
    long = frame.assign(column=column)
    dupes = long.duplicated(["timestamp", "resource", "column"])
    if dupes.any():
        first = long[dupes].iloc[0]
        raise ValueError(
            f"pivot_wide: several values for {first['column']} of {first['resource']} at {first['timestamp']} "
            "(same metric in several namespaces?); pivot each namespace separately"
        )
    wide = long.pivot(index=["timestamp", "resource"], columns="column", values="value")
    wide = wide.reindex(columns=sorted(wide.columns)).sort_index().astype("float64")
    wide.columns.name = None
    return wide


def _ratio(
    frame: pd.DataFrame,
    namespace: str,
    numerator: str,
    denominator: str,
    names: tuple[str, str, str],
) -> pd.DataFrame:
    """Sum-statistic numerator / denominator per (timestamp, resource); NaN where denominator is 0."""
    num_col, den_col, rate_col = names
    schema = {"timestamp": UTC_TS, "resource": "string", num_col: "float64", den_col: "float64", rate_col: "float64"}
    sel = frame[(frame["namespace"] == namespace) & (frame["stat"] == "Sum")]
    parts = []
    for metric, col in ((numerator, num_col), (denominator, den_col)):
        part = sel[sel["metric"] == metric].groupby(["timestamp", "resource"], observed=True)["value"].sum()
        parts.append(part.rename(col))
    joined = pd.concat(parts, axis=1).fillna(0.0).reset_index()
    if joined.empty:
        return typed_frame([], schema)
    den = joined[den_col].astype("float64")
    joined[rate_col] = np.where(den > 0, joined[num_col] / den.where(den > 0, 1.0), np.nan)
    out = typed_frame(joined, schema)
    return out.sort_values(["resource", "timestamp"], kind="stable").reset_index(drop=True)


def error_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """Lambda error rate per function and period: Errors Sum / Invocations Sum.

    A missing datapoint counts as 0; the rate is NaN where there were no invocations.

    Parameters
    ----------
    frame
        A :func:`metric_data` frame holding ``AWS/Lambda`` Errors and Invocations (Sum).

    Returns
    -------
    pandas.DataFrame
        ``timestamp``, ``resource`` (function), ``errors``, ``invocations``,
        ``error_rate`` (a fraction, 0.05 = 5 %); sorted by resource, timestamp.

    Examples
    --------
    >>> error_rate(metric_data(lambda_metrics(fns), "24h", period=3600))  # doctest: +SKIP
    """
    return _ratio(frame, "AWS/Lambda", "Errors", "Invocations", ("errors", "invocations", "error_rate"))


def apigw_5xx_rate(frame: pd.DataFrame) -> pd.DataFrame:
    """API Gateway 5xx rate per API and period: 5XXError Sum / Count Sum.

    A missing datapoint counts as 0; the rate is NaN where there were no requests.

    Parameters
    ----------
    frame
        A :func:`metric_data` frame holding ``AWS/ApiGateway`` Count and 5XXError (Sum).

    Returns
    -------
    pandas.DataFrame
        ``timestamp``, ``resource`` (API name), ``requests``, ``errors_5xx``, ``rate``
        (a fraction, 1.0 = every request failed); sorted by resource, timestamp.

    Examples
    --------
    >>> apigw_5xx_rate(metric_data(apigw_metrics(apis), "24h", period=3600))  # doctest: +SKIP
    """
    out = _ratio(frame, "AWS/ApiGateway", "5XXError", "Count", ("errors_5xx", "requests", "rate"))
    return out[["timestamp", "resource", "requests", "errors_5xx", "rate"]]
