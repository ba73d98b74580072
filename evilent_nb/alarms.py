"""Alarms as code: the runbook's two alarms for every discovered function, planned as a diff.

The runbook wants, per service, ``<Service>-HighErrorRate`` (AWS/Lambda Errors, Sum over
3600 s, 1 evaluation period, > 10) and ``<Service>-HighLatency`` (Duration, Average over
300 s, 2 evaluation periods, > 5000 ms), notifying an SNS topic. The settings come from
the rulebook (``rulebook["alarms"]``), the topic from ``evilent.yml`` (``sns_topic``).

Naming
    ``<Service>`` is the stack name without a trailing ``Stack`` (``UserServiceStack`` ->
    ``UserService``), so a one-function stack gets ``UserService-HighErrorRate``. When a
    stack has more than one function, each function gets its own pair, named
    ``<Service>-<function>-<Alarm>`` where ``<function>`` is the function name without the
    leading ``<stack>-`` that CloudFormation puts there (``UserService-Worker-HighLatency``).

The diff
    An alarm is matched to the runbook's by name. It needs ``create`` when no alarm has that
    name, and ``update`` when its namespace, metric, statistic, period, evaluation periods,
    threshold, comparison or FunctionName dimension differ, or when the topic is not among
    its alarm actions. Actions are only ever added: an update keeps every action the alarm
    already has (someone may page through another topic too). Alarms that already match
    give no row, so the plan after an apply is empty.

Safety
    :func:`apply_alarms` is a dry run unless ``apply=True`` (see :mod:`evilent_nb.maintenance`
    for the plan/result shape shared by every write). PutMetricAlarm replaces a whole alarm,
    so before updating it reads the alarm and keeps what the plan does not manage (its
    description, OK and insufficient-data actions, TreatMissingData, ActionsEnabled).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import boto3
import pandas as pd

from .aws import client, translate_errors
from .exceptions import DataSourceError, ParameterError
from .frames import typed_frame
from .maintenance import run_plan

__all__ = [
    "alarm_label",
    "apply_alarms",
    "check_missing_alarm",
    "plan_alarms",
    "resolve_topic_arn",
]

_PLAN = {
    "action": "string",
    "target": "string",
    "name": "string",
    "function": "string",
    "service": "string",
    "alarm": "string",  # the runbook's alarm: HighErrorRate, HighLatency
    "metric": "string",
    "namespace": "string",
    "statistic": "string",
    "period": "Int64",
    "evaluation_periods": "Int64",
    "threshold": "float64",
    "comparison": "string",
    "topic_arn": "string",
    "differences": "string",
    "alarm_actions": "object",  # the full AlarmActions list to put
}
_SYMBOL = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
_UNIT = {"Duration": " ms"}
# Settings PutMetricAlarm would wipe on update that the runbook does not manage.
_KEEP_ON_UPDATE = (
    "AlarmDescription",
    "OKActions",
    "InsufficientDataActions",
    "TreatMissingData",
    "ActionsEnabled",
    "EvaluateLowSampleCountPercentile",
)


def alarm_label(stack: str) -> str:
    """The ``<Service>`` of the runbook's alarm names: the stack name without a trailing ``Stack``.

    Examples
    --------
    >>> alarm_label("UserServiceStack")
    'UserService'
    """
    # the same rule as evilent_nb.estate.Service.label, for stand-ins without a label
    return re.sub(r"[-_]?stack$", "", stack, flags=re.IGNORECASE) or stack


def _num(value: float) -> str:
    return f"{value:g}"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value))


def _show(value: Any) -> str:
    if _missing(value):
        return "<none>"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _dims(value: Any) -> dict[str, str]:
    if _missing(value):
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {str(d["Name"]): str(d["Value"]) for d in value}  # AWS's list of {Name, Value}


def _runbook_text(spec: Mapping[str, Any]) -> str:
    """E.g. "alarm when Duration (Average per 5 min) > 5000 ms for 2 periods in a row"."""
    periods = int(spec["evaluation_periods"])
    seconds = int(spec["period"])
    span = (f"{seconds // 3600} h" if seconds % 3600 == 0 else
            f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s")
    return (
        f"alarm when {spec['metric']} ({spec['statistic']} per {span}) "
        f"{_SYMBOL.get(spec['comparison'], spec['comparison'])} "
        f"{_num(float(spec['threshold']))}{_UNIT.get(spec['metric'], '')}"
        + (f" for {periods} periods in a row" if periods != 1 else "")
    )


def _services(estate: Any) -> list[Any]:
    return list(getattr(estate, "services", estate))


def _diff(want: Mapping[str, Any], have: Mapping[str, Any], topic_arn: str | None) -> list[str]:
    out = []
    for col in ("namespace", "metric", "statistic", "period", "evaluation_periods", "threshold", "comparison"):
        old, new = have.get(col), want[col]
        if col == "threshold":
            same = not _missing(old) and float(old) == float(new)
        elif col in ("period", "evaluation_periods"):
            same = not _missing(old) and int(old) == int(new)
        else:
            same = not _missing(old) and str(old) == str(new)
        if not same:
            out.append(f"{col} {_show(old)} -> {_show(new)}")
    old_dims = _dims(have.get("dimensions"))
    if old_dims != want["dimensions"]:
        fmt = lambda d: ",".join(f"{k}={v}" for k, v in sorted(d.items())) or "<none>"  # noqa: E731
        out.append(f"dimensions {fmt(old_dims)} -> {fmt(want['dimensions'])}")
    actions = [] if _missing(have.get("actions")) else list(have["actions"])
    if topic_arn and topic_arn not in actions:
        out.append(f"actions: add {topic_arn}")
    return out


def plan_alarms(
    estate: Any,
    existing: pd.DataFrame | None,
    *,
    rulebook: Mapping[str, Any],
    topic_arn: str | None,
) -> pd.DataFrame:
    """The runbook's alarms for every discovered function, as a diff against what exists.

    Parameters
    ----------
    estate
        An :class:`~evilent_nb.estate.Estate` (or anything with ``services``, or a list of
        services), each service having ``name`` (short name), ``stack`` and ``functions``.
    existing
        The alarms that exist, as from :func:`evilent_nb.inventory.alarms` (SCHEMAS["alarms"]).
    rulebook
        The rulebook; its ``alarms`` maps each alarm (``HighErrorRate``, ``HighLatency``) to
        ``metric, namespace, statistic, period, evaluation_periods, threshold, comparison``.
    topic_arn
        The SNS topic ARN for AlarmActions (see :func:`resolve_topic_arn`), or None when the
        topic was not found: alarms are then planned without it and the plan says so.

    Returns
    -------
    pandas.DataFrame
        One row per alarm needing a write: ``action`` (``create``/``update``), ``target``
        (= ``name``), ``name``, ``function``, ``service`` (short name), ``alarm``
        (``HighErrorRate``...), ``metric, namespace, statistic, period, evaluation_periods,
        threshold, comparison`` (the runbook's settings), ``topic_arn``, ``differences``
        (``"missing"`` or e.g. ``"threshold 20 -> 10"``), ``alarm_actions`` (the list to put).
        ``plan.attrs``: ``expected`` (alarms the runbook wants), ``ok`` (already matching),
        ``topic_arn``, and ``warnings`` (e.g. the topic is missing).

    Raises
    ------
    ParameterError
        ``topic_arn`` is a name, not an ARN.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> from evilent_nb.config import default_rulebook
    >>> svc = NS(name="user", stack="UserServiceStack",
    ...          functions=("UserServiceStack-ServiceUserServiceFunction",))
    >>> plan = plan_alarms([svc], None, rulebook=default_rulebook(),
    ...                    topic_arn="arn:aws:sns:eu-central-1:123456789012:alerts-topic")
    >>> plan["name"].tolist()
    ['UserService-HighErrorRate', 'UserService-HighLatency']
    """
    if topic_arn is not None and not str(topic_arn).startswith("arn:"):
        raise ParameterError(f"topic_arn {topic_arn!r} is not an ARN; resolve it with resolve_topic_arn() first")
    specs: Mapping[str, Mapping[str, Any]] = rulebook["alarms"]
    have: dict[str, dict[str, Any]] = {}
    if existing is not None and len(existing):
        have = {str(r["name"]): r for r in existing.to_dict("records")}
    warnings = []
    if not topic_arn:
        warnings.append("no SNS topic found: alarms would notify nobody (set sns_topic in evilent.yml)")
    rows, ok, expected = [], 0, 0
    for svc in _services(estate):
        label = getattr(svc, "label", None) or alarm_label(svc.stack)
        functions = list(svc.functions)
        for fn in functions:
            part = fn[len(svc.stack) + 1 :] if fn.startswith(f"{svc.stack}-") else fn
            prefix = label if len(functions) == 1 else f"{label}-{part}"
            for kind, spec in specs.items():
                expected += 1
                name = f"{prefix}-{kind}"
                want = {**spec, "dimensions": {"FunctionName": fn}}
                current = have.get(name)
                if current is None:
                    action, diffs = "create", ["missing"]
                    actions = [topic_arn] if topic_arn else []
                else:
                    diffs = _diff(want, current, topic_arn)
                    if not diffs:
                        ok += 1
                        continue
                    action = "update"
                    actions = [] if _missing(current.get("actions")) else list(current["actions"])
                    if topic_arn and topic_arn not in actions:
                        actions.append(topic_arn)
                if not actions:
                    diffs.append("no alarm action (SNS topic not found)")
                rows.append({
                    "action": action,
                    "target": name,
                    "name": name,
                    "function": fn,
                    "service": svc.name,
                    "alarm": kind,
                    "metric": spec["metric"],
                    "namespace": spec["namespace"],
                    "statistic": spec["statistic"],
                    "period": spec["period"],
                    "evaluation_periods": spec["evaluation_periods"],
                    "threshold": spec["threshold"],
                    "comparison": spec["comparison"],
                    "topic_arn": topic_arn,
                    "differences": "; ".join(diffs),
                    "alarm_actions": actions,
                })
    plan = typed_frame(rows, _PLAN)
    plan.attrs.update(expected=expected, ok=ok, topic_arn=topic_arn, warnings=warnings)
    return plan


def resolve_topic_arn(name_or_arn: str | None, *, boto3_session: boto3.Session | None = None) -> str | None:
    """The ARN of the alarms' SNS topic, from a name or an ARN.

    Parameters
    ----------
    name_or_arn
        An ARN (returned as is, without any call) or a topic name (looked up with ListTopics).
    boto3_session
        Session to use.

    Returns
    -------
    str or None
        The ARN, or None when no topic has that name (or ``name_or_arn`` is empty).

    Examples
    --------
    >>> resolve_topic_arn("arn:aws:sns:eu-central-1:123456789012:alerts-topic")
    'arn:aws:sns:eu-central-1:123456789012:alerts-topic'

    See https://docs.aws.amazon.com/sns/latest/api/API_ListTopics.html
    """
    if not name_or_arn:
        return None
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    with translate_errors("sns.ListTopics"):
        for page in client("sns", boto3_session).get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                arn = topic["TopicArn"]
                if arn.rsplit(":", 1)[-1] == name_or_arn:
                    return arn
    return None


def _current_definitions(names: list[str], boto3_session: boto3.Session | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    paginator = client("cloudwatch", boto3_session).get_paginator("describe_alarms")
    for i in range(0, len(names), 100):  # AlarmNames takes at most 100
        with translate_errors("cloudwatch.DescribeAlarms"):
            for page in paginator.paginate(AlarmNames=names[i : i + 100], AlarmTypes=["MetricAlarm"]):
                for alarm in page.get("MetricAlarms", []):
                    found[alarm["AlarmName"]] = alarm
    return found


def apply_alarms(
    plan: pd.DataFrame,
    *,
    apply: bool = False,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Create or update the planned alarms (PutMetricAlarm), only with ``apply=True``.

    Parameters
    ----------
    plan
        From :func:`plan_alarms`.
    apply
        False (default): a dry run, no AWS call at all. True: one PutMetricAlarm per row
        (and, when the plan has updates, one DescribeAlarms read to keep their other settings).
    boto3_session
        Session to use.

    Returns
    -------
    pandas.DataFrame
        ``action, target, applied, status, name``: ``status`` is ``planned``, ``done`` or
        ``error: ...``.

    Examples
    --------
    >>> apply_alarms(plan)                       # doctest: +SKIP
    >>> apply_alarms(plan, apply=True)           # doctest: +SKIP

    See https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
    """
    current: dict[str, dict[str, Any]] = {}
    read_error: DataSourceError | None = None
    if apply:
        updates = [str(n) for n in plan.loc[plan["action"] == "update", "name"]]
        if updates:
            try:
                current = _current_definitions(updates, boto3_session)
            except DataSourceError as exc:
                read_error = exc  # updating blind could wipe settings: fail those rows

    def write(rec: Mapping[str, Any]) -> None:
        kept: dict[str, Any] = {}
        if rec["action"] == "update":
            if read_error is not None:
                raise read_error
            old = current.get(str(rec["name"]), {})
            kept = {k: old[k] for k in _KEEP_ON_UPDATE if k in old}
        kept.setdefault(
            "AlarmDescription",
            f"EVILENT runbook {rec['alarm']} for {rec['function']} (managed by evilent-nb)",
        )
        actions = rec.get("alarm_actions")
        with translate_errors("cloudwatch.PutMetricAlarm"):
            client("cloudwatch", boto3_session).put_metric_alarm(
                AlarmName=str(rec["name"]),
                Namespace=str(rec["namespace"]),
                MetricName=str(rec["metric"]),
                Statistic=str(rec["statistic"]),
                Dimensions=[{"Name": "FunctionName", "Value": str(rec["function"])}],
                Period=int(rec["period"]),
                EvaluationPeriods=int(rec["evaluation_periods"]),
                Threshold=float(rec["threshold"]),
                ComparisonOperator=str(rec["comparison"]),
                AlarmActions=[] if _missing(actions) else list(actions),
                **kept,
            )

    return run_plan(plan, write, apply=apply, keys=("name",))


def check_missing_alarm(plan: pd.DataFrame) -> pd.DataFrame:
    """Findings ``missing_alarm`` (P3) from an alarm plan: one per alarm to create or update.

    An alarm that exists under the runbook's name but with other settings (or without the
    topic) is not the runbook's alarm either, so it is reported too, its message starting
    "... differs from the runbook".

    Parameters
    ----------
    plan
        From :func:`plan_alarms`.

    Returns
    -------
    pandas.DataFrame
        Findings (SCHEMAS["findings"]): ``severity`` P3, ``check`` ``missing_alarm``,
        ``service`` (short name), ``resource`` (the function), ``threshold`` (the runbook's),
        ``message``, ``playbook`` ""; sorted by service, function, alarm name.

    Examples
    --------
    >>> check_missing_alarm(plan)["message"].iloc[0]       # doctest: +SKIP
    'UserServiceStack-ServiceUserServiceFunction has no UserService-HighLatency alarm (runbook: alarm when Duration (Average per 5 min) > 5000 ms for 2 periods in a row)'
    """
    rows = []
    for rec in plan.sort_values(["service", "function", "name"]).to_dict("records"):
        runbook = _runbook_text(rec)
        if rec["action"] == "create":
            message = f"{rec['function']} has no {rec['name']} alarm (runbook: {runbook})"
        else:
            message = f"{rec['name']} on {rec['function']} differs from the runbook: {rec['differences']} (runbook: {runbook})"
        rows.append({
            "severity": "P3",
            "check": "missing_alarm",
            "service": rec["service"],
            "resource": rec["function"],
            "value": None,
            "threshold": rec["threshold"],
            "at": None,
            "message": message,
            "playbook": "",
        })
    return typed_frame(rows, "findings")
