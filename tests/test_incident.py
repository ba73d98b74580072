"""Incident analysis on synthetic series: onset, triggers, classification, escalation, findings."""

from __future__ import annotations

import pandas as pd
import pytest

from evilent_nb.estate import Estate, Service
from evilent_nb.frames import SCHEMAS, typed_frame
from evilent_nb.incident import (
    TRIGGERS_SCHEMA,
    classify_incident,
    error_onset,
    error_series,
    escalation_status,
    incident_findings,
    suspected_triggers,
)
from evilent_nb.timeframe import Window

FN = "UserServiceStack-ServiceUserServiceFunction"
STACK = "UserServiceStack"
T = pd.Timestamp("2026-11-28T09:00:00Z")  # the deploy
WINDOW = Window(T - pd.Timedelta("1h"), T + pd.Timedelta("1h"))
ESTATE = Estate("eu-central-1", [
    Service("user", STACK, "UPDATE_COMPLETE", functions=(FN,), apis=("UserServiceApi",),
            log_groups=(f"/aws/lambda/{FN}",)),
    Service("product", "ProductServiceStack", "UPDATE_COMPLETE", functions=("ProductFn",)),
])


def minute(offset_min: float) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=offset_min)


def errors_metrics(per_minute: dict[int, float], start: int = -60, end: int = 60, fn: str = FN) -> pd.DataFrame:
    """Errors Sum per minute from T+start to T+end (minutes); unlisted minutes are 0."""
    rows = [{"timestamp": minute(i), "namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum",
             "label": f"{fn} Errors Sum", "resource": fn, "value": per_minute.get(i, 0.0), "function_name": fn}
            for i in range(start, end)]
    return typed_frame(rows, "metrics", extra={"function_name": "string"})


def stack_events(*events: tuple[float, str], stack: str = STACK) -> pd.DataFrame:
    rows = [{"timestamp": minute(m), "stack": stack, "logical_id": stack, "physical_id": f"arn:{stack}",
             "resource_type": "AWS::CloudFormation::Stack", "status": status, "event_id": f"e{i}"}
            for i, (m, status) in enumerate(events)]
    # a resource-level event of the same deploy is not a deploy by itself
    rows.append({"timestamp": minute(1), "stack": stack, "logical_id": "ServiceUserServiceFunction",
                 "resource_type": "AWS::Lambda::Function", "status": "UPDATE_COMPLETE", "event_id": "r"})
    return typed_frame(rows, "stack_events")


def deploy(at_min: float, took_min: float = 2) -> pd.DataFrame:
    return stack_events((at_min, "UPDATE_IN_PROGRESS"), (at_min + took_min - 0.5, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
                        (at_min + took_min, "UPDATE_COMPLETE"))


SPIKE = {i: 20.0 for i in range(5, 40)}  # errors from T+5 min


# -- onset ------------------------------------------------------------------------------


def test_onset_from_metrics_is_the_first_sustained_departure():
    assert error_onset(errors_metrics(SPIKE), window=WINDOW) == minute(5)


def test_a_lone_blip_is_not_the_onset():
    blip = {-30: 4.0, **SPIKE}
    assert error_onset(errors_metrics(blip), window=WINDOW) == minute(5)
    assert error_onset(errors_metrics({-30: 4.0}), window=WINDOW) is None


def test_noisy_baseline_needs_a_real_departure():
    # 2 errors a minute all along, alternating 1/3: +1 above the mean is noise; 20/min from T+5 is not
    noisy = {i: (1.0 if i % 2 else 3.0) for i in range(-60, 60)}
    assert error_onset(errors_metrics(noisy), window=WINDOW) is None
    assert error_onset(errors_metrics({**noisy, **SPIKE}), window=WINDOW) == minute(5)


def test_errors_present_from_the_start_have_no_onset_inside_the_window():
    assert error_onset(errors_metrics({i: 20.0 for i in range(-60, 60)}), window=WINDOW) is None
    # two quiet minutes are too short a baseline (min_baseline 3); three are enough
    assert error_onset(errors_metrics({i: 20.0 for i in range(-58, 60)}), window=WINDOW) is None
    assert error_onset(errors_metrics({i: 20.0 for i in range(-57, 60)}), window=WINDOW) == minute(-57)


def test_no_errors_no_onset_and_missing_inputs():
    assert error_onset(errors_metrics({}), window=WINDOW) is None
    assert error_onset(None) is None
    assert error_onset(typed_frame([], "metrics")) is None


def test_onset_with_five_minute_metrics():
    rows = {i: 0.0 for i in range(-60, 60, 5)}
    frame = errors_metrics(rows)
    frame = frame[frame.timestamp.dt.minute % 5 == 0].copy()
    frame.loc[frame.timestamp >= minute(10), "value"] = 50.0
    assert error_onset(frame, window=WINDOW) == minute(10)


def log_events(times: list[pd.Timestamp], message: str = "ERROR db timeout", level: str | None = "ERROR") -> pd.DataFrame:
    rows = [{"timestamp": t, "log_group": f"/aws/lambda/{FN}", "log_stream": "s", "message": message,
             "event_id": str(i), "level": level} for i, t in enumerate(times)]
    return typed_frame(rows, "log_events")


def test_onset_from_logs_when_metrics_are_missing():
    # three error lines a minute from T+5 min 20 s; one INFO line earlier does not count
    errors = [minute(5 + i + s / 60) for i in range(20) for s in (20, 30, 40)]
    info = log_events([minute(-20)], message="INFO started", level="INFO")
    events = pd.concat([info, log_events(errors)], ignore_index=True)
    series = error_series(None, log_events=events, window=WINDOW)
    assert series.attrs["source"] == "logs"
    assert (series.index[0], series.index[-1], series.sum()) == (WINDOW.start, minute(59), 60.0)
    assert error_onset(None, log_events=events, window=WINDOW) == minute(5)
    # an empty metrics frame falls back to logs too
    assert error_onset(typed_frame([], "metrics"), log_events=events, window=WINDOW) == minute(5)
    # without a window, the quiet time before the errors starts at the first line of any level
    assert error_onset(None, log_events=events) == minute(5)
    assert error_onset(None, log_events=log_events(errors)) is None  # errors from the first line: no baseline
    # message-only ERROR lines (no parsed level) count
    assert error_onset(None, log_events=log_events(errors, level=None), window=WINDOW) == minute(5)


def test_hourly_metrics_use_at_least_min_baseline_buckets():
    rows = [{"timestamp": T + pd.Timedelta(hours=h), "namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum",
             "resource": FN, "value": v} for h, v in enumerate([2, 1, 3, 2, 220, 216, 1])]
    assert error_onset(typed_frame(rows, "metrics")) == T + pd.Timedelta(hours=4)
    # one bad hour followed by a normal one is a blip, not an onset
    blip = [{**r, "value": 1.0} if i == 5 else r for i, r in enumerate(rows)]
    assert error_onset(typed_frame(blip, "metrics")) is None


def test_coarse_metrics_without_an_onset_fall_back_to_logs():
    # three hourly datapoints, all high: no baseline in them; the log lines show the onset
    rows = [{"timestamp": T + pd.Timedelta(hours=h), "namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum",
             "resource": FN, "value": 220.0} for h in range(-1, 2)]
    events = pd.concat([log_events([minute(-50)], message="INFO ok", level="INFO"),
                        log_events([minute(7 + i / 2) for i in range(40)])], ignore_index=True)
    assert error_onset(typed_frame(rows, "metrics"), window=WINDOW) is None
    assert error_onset(typed_frame(rows, "metrics"), log_events=events, window=WINDOW) == minute(7)


def test_metrics_win_over_logs_and_resource_filter():
    m = pd.concat([errors_metrics(SPIKE), errors_metrics({i: 30.0 for i in range(-50, 60)}, fn="Other")],
                  ignore_index=True)
    assert error_onset(m, resource=FN, window=WINDOW, log_events=log_events([minute(-40)] * 5)) == minute(5)
    assert error_series(m, resource=FN).attrs["source"] == "metrics"


# -- triggers ---------------------------------------------------------------------------


def test_a_deploy_before_onset_is_the_trigger():
    onset = error_onset(errors_metrics(SPIKE), window=WINDOW)
    t = suspected_triggers(onset, deploy(0), lookback="60min")
    assert list(t.columns) == list(TRIGGERS_SCHEMA)
    assert t[["time", "kind", "resource", "stack", "minutes_before_onset"]].values.tolist() == [
        [T, "deploy", STACK, STACK, 5.0]]  # one row for the IN_PROGRESS/COMPLETE pair
    assert t.detail[0] == "UPDATE_IN_PROGRESS at 09:00:00 UTC, UPDATE_COMPLETE at 09:02:00 UTC"


def test_a_deploy_after_onset_is_not_a_trigger():
    onset = error_onset(errors_metrics(SPIKE), window=WINDOW)
    assert suspected_triggers(onset, deploy(10), lookback="60min").empty


def test_no_deploy_no_trigger():
    onset = error_onset(errors_metrics(SPIKE), window=WINDOW)
    empty_events = typed_frame([], "stack_events")
    t = suspected_triggers(onset, empty_events, typed_frame([], "functions"))
    assert t.empty and list(t.columns) == list(TRIGGERS_SCHEMA)
    assert suspected_triggers(None, deploy(0)).empty


def test_triggers_ranked_by_proximity_within_lookback_with_config_changes():
    onset = minute(5)
    events = pd.concat([deploy(-70), deploy(-30), deploy(0), deploy(20),
                        stack_events((-10, "UPDATE_ROLLBACK_IN_PROGRESS"), (-9, "UPDATE_ROLLBACK_COMPLETE"))],
                       ignore_index=True)
    fns = typed_frame([
        {"name": FN, "last_modified": minute(1)},        # inside the T deploy: that deploy
        {"name": "ProductFn", "last_modified": minute(-15)},  # a change outside any deploy
        {"name": "OldFn", "last_modified": minute(-200)},  # long before
    ], "functions")
    t = suspected_triggers(onset, events, fns, "60min", estate=ESTATE)
    assert t[["kind", "resource", "stack", "minutes_before_onset"]].values.tolist() == [
        ["deploy", STACK, STACK, 5.0],
        ["config change", "ProductFn", "ProductServiceStack", 20.0],
        ["deploy", STACK, STACK, 35.0],
    ]
    # a shorter lookback keeps only the closest
    assert suspected_triggers(onset, events, fns, "10min", estate=ESTATE).minutes_before_onset.tolist() == [5.0]


def test_deploy_without_its_start_uses_completion_and_create_counts():
    events = stack_events((2, "UPDATE_COMPLETE"), (-40, "CREATE_IN_PROGRESS"), (-38, "CREATE_COMPLETE"))
    t = suspected_triggers(minute(5), events)
    assert t[["kind", "minutes_before_onset", "detail"]].values.tolist() == [
        ["deploy", 3.0, "UPDATE_COMPLETE at 09:02:00 UTC"],
        ["deploy", 45.0, "CREATE_IN_PROGRESS at 08:20:00 UTC, CREATE_COMPLETE at 08:22:00 UTC"],
    ]


# -- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "severity", "first_reason", "playbook"),
    [
        # P0: API 100 % down
        ({"rate_5xx_max": 1.0}, "P0", "100 % of API requests failed with 5xx", "api-down"),
        ({"health_ok": False, "health_detail": "answered HTTP 503"}, "P0",
         "the service is down (/health answered HTTP 503)", "api-down"),
        ({"error_rate_max": 1.0, "errors_per_hour_max": 900}, "P0", "100 % of Lambda invocations failed", "api-down"),
        # P1: login not working
        ({"errors_per_hour_max": 150, "health_ok": True}, "P1", "150 errors in one hour (above 100/h)", "high-error-rate"),
        ({"rate_5xx_max": 0.3}, "P1", "30 % of API requests failed with 5xx (above 10 %)", "high-error-rate"),
        ({"error_rate_max": 0.25}, "P1", "25 % of Lambda invocations failed (above 10 %)", "high-error-rate"),
        ({"db_available": False, "db_status": "stopped"}, "P1", "the database is stopped", "db-connection"),
        # P2: high latency / degraded
        ({"latency_ms_max": 7000}, "P2", "average duration 7,000 ms (above 5000 ms)", "high-latency"),
        ({"rate_5xx_max": 0.07}, "P2", "7 % of API requests failed with 5xx (above 5 %)", "high-error-rate"),
        ({"rate_5xx_max": 0.10}, "P2", "10 % of API requests failed with 5xx (above 5 %)", "high-error-rate"),
        ({"errors_per_hour_max": 100}, "P2", "100 errors in one hour (above 10/h)", "high-error-rate"),
        ({"errors_per_hour_max": 11}, "P2", "11 errors in one hour (above 10/h)", "high-error-rate"),
        # P3: minor (a typo in a message shows in no metric)
        ({}, "P3", "nothing above the runbook's thresholds, a minor issue at most", ""),
        ({"errors_per_hour_max": 10, "latency_ms_max": 5000, "rate_5xx_max": 0.05, "error_rate_max": 0.10,
          "health_ok": True, "db_available": True}, "P3", "nothing above the runbook's thresholds, a minor issue at most", ""),
    ],
)
def test_classify_incident(evidence, severity, first_reason, playbook):
    got, reasons = classify_incident(**evidence)
    assert got == severity
    assert reasons[0] == first_reason
    assert (reasons[0].severity, reasons[0].playbook) == (severity, playbook)


def test_reasons_survive_copy_pickle_and_json():
    import copy
    import json
    import pickle

    _, reasons = classify_incident(db_available=False)
    for clone in (copy.deepcopy(reasons[0]), pickle.loads(pickle.dumps(reasons[0]))):
        assert (clone, clone.severity, clone.playbook) == ("the database is not available", "P1", "db-connection")
    assert json.loads(json.dumps(reasons)) == ["the database is not available"]


def test_classify_lists_every_reason_most_severe_first():
    sev, reasons = classify_incident(latency_ms_max=8000, db_available=False, rate_5xx_max=1.0)
    assert sev == "P0"
    assert [r.severity for r in reasons] == ["P0", "P1", "P2"]


def test_declared_severity_is_recorded_but_evidence_decides():
    assert classify_incident(errors_per_hour_max=150, declared="P1") == ("P1", ["150 errors in one hour (above 100/h)"])
    sev, reasons = classify_incident(declared="p0")
    assert sev == "P3"
    assert reasons[-1] == "declared P0; the evidence supports P3"
    with pytest.raises(ValueError):
        classify_incident(declared="P7")


def test_classify_uses_the_rulebook():
    from evilent_nb.config import default_rulebook

    rb = default_rulebook()
    rb["lambda_errors"]["p1_above"] = 200
    assert classify_incident(errors_per_hour_max=150, rulebook=rb)[0] == "P2"


# -- escalation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "open_min", "level", "who", "channel", "breached", "next_who", "next_at_min"),
    [
        ("P0", 10, 1, "on-call engineer", "#incidents", False, "tech lead", 30),
        ("P0", 15, 1, "on-call engineer", "#incidents", False, "tech lead", 30),   # deadline exactly
        ("P0", 16, 1, "on-call engineer", "#incidents", True, "tech lead", 30),
        ("P0", 30, 1, "on-call engineer", "#incidents", True, "tech lead", 30),    # 30 min is not > 30
        ("P0", 31, 3, "tech lead", "#incidents", True, None, None),
        ("P1", 45, 1, "on-call engineer", "#incidents", False, "senior engineer", 60),
        ("P1", 60, 1, "on-call engineer", "#incidents", False, "senior engineer", 60),
        ("P1", 61, 2, "senior engineer", "#incidents", True, None, None),
        ("P2", 239, 1, "on-call engineer", "#backend-support", False, None, None),
        ("P2", 241, 1, "on-call engineer", "#backend-support", True, None, None),
        ("P3", 1439, 1, "on-call engineer", "#backend-support", False, None, None),
        ("P3", 1441, 1, "on-call engineer", "#backend-support", True, None, None),
    ],
)
def test_escalation_status(severity, open_min, level, who, channel, breached, next_who, next_at_min):
    s = escalation_status(severity, T, minute(open_min))
    deadline = {"P0": 15, "P1": 60, "P2": 240, "P3": 1440}[severity]
    assert (s["level"], s["who"], s["channel"], s["breached"], s["next_who"]) == (level, who, channel, breached, next_who)
    assert s["response_deadline"] == minute(deadline)
    assert s["open_minutes"] == open_min
    assert s["next_escalation_at"] == (minute(next_at_min) if next_at_min is not None else None)


def test_escalation_response_in_time_is_not_breached_though_escalated():
    s = escalation_status("P0", T, minute(45), responded_at=minute(10))
    assert (s["breached"], s["level"], s["contact"]) == (False, 3, "@tech-lead")
    assert escalation_status("P0", T, minute(45), responded_at=minute(20))["breached"] is True


# -- findings ---------------------------------------------------------------------------


def test_incident_findings_match_the_design_table():
    onset = minute(5)
    triggers = suspected_triggers(onset, deploy(0))
    sev, reasons = classify_incident(errors_per_hour_max=450, rate_5xx_max=0.07)
    sigs = typed_frame([
        {"signature": "ERROR Connection timeout to <host>", "count": 410, "first_seen": minute(5),
         "last_seen": minute(39), "example": "ERROR Connection timeout to db:5432", "log_group": f"/aws/lambda/{FN}"},
        {"signature": "ERROR other", "count": 3, "first_seen": minute(6), "last_seen": minute(7),
         "log_group": f"/aws/lambda/{FN}"},
    ], "error_signatures")
    f = incident_findings("user", severity=sev, reasons=reasons, triggers=triggers, top_signature=sigs, onset=onset)
    assert list(f.columns) == list(SCHEMAS["findings"])
    assert f[["severity", "check", "service", "resource", "value", "at"]].astype(object).where(
        f[["severity", "check", "service", "resource", "value", "at"]].notna(), None).values.tolist() == [
        ["P1", "suspected_trigger", "user", STACK, 5.0, T],
        ["P1", "incident_severity", "user", "user", None, onset],
        ["P1", "top_error", "user", f"/aws/lambda/{FN}", 410.0, onset],
    ]
    msg = dict(zip(f.check, f.message, strict=True))
    assert msg["incident_severity"] == ("P1: 450 errors in one hour (above 100/h). Also: 7 % of API requests failed "
                                        "with 5xx (above 5 %). Errors began 2026-11-28 09:05 UTC.")
    assert msg["top_error"] == "ERROR Connection timeout to <host>"
    assert msg["suspected_trigger"].startswith("deploy of UserServiceStack 5 min before the errors began")
    assert set(f.playbook) == {"high-error-rate"}


def test_incident_findings_always_one_severity_even_without_evidence():
    sev, reasons = classify_incident()
    f = incident_findings("user", severity=sev, reasons=reasons, at=WINDOW.start)
    assert f[["severity", "check", "at"]].values.tolist() == [["P3", "incident_severity", WINDOW.start]]
    assert f.message[0] == ("P3: nothing above the runbook's thresholds, a minor issue at most. "
                            "No error onset was found.")
    assert incident_findings("user", severity="P2", reasons=["slow"], top_signature="ERROR x",
                             log_group="/aws/lambda/x").resource.tolist() == ["user", "/aws/lambda/x"]
