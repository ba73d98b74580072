"""Views: assertions on the artists (not pixels) of every figure, and on the styled HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from evilent_nb import plots
from evilent_nb.frames import typed_frame

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
FN_A = "UserServiceStack-ServiceUserServiceFunction-1A2B3C4D5E6F"
FN_B = "OrderServiceStack-ServiceOrderServiceFunction-9Z8Y7X6W5V"


def _metrics(hours: int = 24) -> pd.DataFrame:
    rows = []
    for h in range(hours):
        t = T0 + timedelta(hours=h)
        rows.append(
            {
                "timestamp": t,
                "namespace": "AWS/Lambda",
                "metric": "Errors",
                "stat": "Sum",
                "resource": FN_A,
                "value": 150.0 if h == 5 else 2.0,
            }
        )
        rows.append(
            {
                "timestamp": t,
                "namespace": "AWS/Lambda",
                "metric": "Errors",
                "stat": "Sum",
                "resource": FN_B,
                "value": 1.0,
            }
        )
        rows.append(
            {
                "timestamp": t,
                "namespace": "AWS/Lambda",
                "metric": "Duration",
                "stat": "Average",
                "resource": FN_A,
                "value": 300.0,
            }
        )
    return typed_frame(rows, "metrics", extra={"function_name": "string"})


def _lines(ax, gid_prefix: str):
    return [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith(gid_prefix)]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _x_as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else mdates.num2date(value)


# --------------------------------------------------------------------------- time series


def test_metric_timeseries_lines_threshold_changes_onset():
    changes = typed_frame(
        [
            {
                "timestamp": T0 + timedelta(hours=4, minutes=50),
                "stack": "UserServiceStack",
                "logical_id": "UserServiceStack",
                "status": "UPDATE_IN_PROGRESS",
            },
            {
                "timestamp": T0 + timedelta(hours=4, minutes=52),
                "stack": "UserServiceStack",
                "logical_id": "UserServiceStack",
                "status": "UPDATE_COMPLETE",
            },
            {
                "timestamp": T0 + timedelta(hours=12),
                "stack": "OrderServiceStack",
                "logical_id": "OrderServiceStack",
                "status": "UPDATE_COMPLETE",
            },
        ],
        "stack_events",
    )
    onset = T0 + timedelta(hours=5)
    fig = plots.metric_timeseries(
        _metrics(),
        metric="Errors",
        stat="Sum",
        threshold=100,
        threshold_label="P1 > 100/h",
        changes=changes,
        onset=onset,
    )
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    series = _lines(ax, "series:")
    assert sorted(ln.get_label() for ln in series) == sorted([FN_A, FN_B])
    # Only the Errors/Sum rows are drawn: 24 hourly buckets per function, as steps, plus
    # the end of the last bucket (one period after its stamp).
    assert [len(ln.get_xdata()) for ln in series] == [25, 25]
    a = next(ln for ln in series if ln.get_label() == FN_A)
    assert a.get_drawstyle() == "steps-post"
    assert a.get_ydata().max() == 150.0
    assert a.get_xdata()[-1] == T0 + timedelta(hours=24) and a.get_ydata()[-1] == 2.0
    x0 = a.get_xdata()[0]
    assert x0.tzinfo is not None and x0.utcoffset() == timedelta(0)
    assert x0 == T0

    (thr,) = _lines(ax, "threshold")
    assert list(thr.get_ydata()) == [100.0, 100.0]
    assert thr.get_linestyle() == "--"
    assert thr.get_label() == "P1 > 100/h"

    markers = _lines(ax, "change")
    assert len(markers) == len(changes) == 3
    assert sorted(_x_as_datetime(m.get_xdata()[0]) for m in markers) == sorted(
        changes["timestamp"].dt.to_pydatetime()
    )
    (onset_line,) = _lines(ax, "onset")
    assert _x_as_datetime(onset_line.get_xdata()[0]) == onset
    assert onset_line.get_linestyle() != markers[0].get_linestyle()
    assert "onset 05:00 UTC" in onset_line.get_label()

    # The two close changes share one label; the far one has its own.
    labels = [t.get_text() for t in ax.texts if t.get_gid() == "change-label"]
    assert labels == [
        "UserServiceStack UPDATE_IN_PROGRESS 04:50 (+1)",
        "OrderServiceStack UPDATE_COMPLETE 12:00",
    ]
    assert fig.get_suptitle() == "AWS/Lambda Errors (Sum) by function"
    assert ax.get_xlabel() == "Time (UTC)"
    assert ax.get_ylabel() == "Errors (Sum, count per 1 h)"
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    ticks = [T0 + timedelta(hours=3), T0 + timedelta(hours=6)]
    with matplotlib.rc_context({"timezone": "Europe/Berlin"}):  # UTC is explicit, not the rc
        assert ax.xaxis.get_major_formatter().format_ticks(mdates.date2num(ticks)) == [
            "03:00",
            "06:00",
        ]
    assert fig.get_figwidth() * fig.dpi == pytest.approx(1200)
    assert fig.legends, "the legend sits outside the axes"
    assert fig._repr_png_().startswith(b"\x89PNG")  # the labels draw (dates converted)


def test_metric_timeseries_several_thresholds_resources_and_change_columns():
    changes = pd.DataFrame(
        {"time": [T0 + timedelta(hours=3)], "label": ["deploy user v42"], "detail": ["x"]}
    )
    fig = plots.metric_timeseries(
        _metrics(),
        metric="Errors",
        stat="Sum",
        resources=[FN_A],
        threshold=[(100, "P1 > 100/h"), (10, "P2 > 10/h")],
        changes=changes,
    )
    (ax,) = fig.axes
    assert [ln.get_label() for ln in _lines(ax, "series:")] == [FN_A]
    thresholds = {ln.get_label(): ln.get_ydata()[0] for ln in _lines(ax, "threshold")}
    assert thresholds == {"P1 > 100/h": 100.0, "P2 > 10/h": 10.0}
    colours = {ln.get_label(): ln.get_color() for ln in _lines(ax, "threshold")}
    assert colours["P1 > 100/h"] != colours["P2 > 10/h"]
    assert len(_lines(ax, "change")) == 1
    assert [t.get_text() for t in ax.texts if t.get_gid() == "change-label"] == ["deploy user v42"]
    assert not _lines(ax, "onset")


def test_metric_timeseries_spans_the_window_and_bands_the_baseline_before_it():
    # Data from T0 (the baseline hour) to T0+24h; the window starts an hour later.
    window = (T0 + timedelta(hours=1), T0 + timedelta(hours=20, minutes=30))
    triggers = pd.DataFrame({"time": [T0 + timedelta(hours=4, minutes=53)], "kind": ["deploy"],
                             "resource": ["UserServiceStack"],
                             "detail": ["UPDATE_IN_PROGRESS at 04:53:00 UTC, UPDATE_COMPLETE at 04:55:00 UTC"]})
    fig = plots.metric_timeseries(_metrics(), metric="Errors", stat="Sum", window=window,
                                  changes=triggers, onset=T0 + timedelta(hours=5))
    (ax,) = fig.axes
    lo, hi = (mdates.num2date(x) for x in ax.get_xlim())
    assert (lo, hi) == (T0, window[1])
    (band,) = [p for p in ax.patches if p.get_gid() == "before-window"]
    x0, x1 = band.get_x(), band.get_x() + band.get_width()
    assert (mdates.num2date(x0), mdates.num2date(x1)) == (T0, window[0])
    # A trigger is labelled by its kind and time, not its long detail.
    assert [t.get_text() for t in ax.texts if t.get_gid() == "change-label"] == ["UserServiceStack deploy 04:53"]
    # Data that starts inside the window: no band, the axis starts at the window.
    fig = plots.metric_timeseries(_metrics(), metric="Errors", stat="Sum", window=(T0 - timedelta(hours=2), window[1]))
    (ax,) = fig.axes
    assert mdates.num2date(ax.get_xlim()[0]) == T0 - timedelta(hours=2)
    assert not [p for p in ax.patches if p.get_gid() == "before-window"]


def test_changes_without_a_time_column_is_an_error():
    with pytest.raises(ValueError, match="time column"):
        plots.metric_timeseries(
            _metrics(), metric="Errors", stat="Sum", changes=pd.DataFrame({"label": ["x"]})
        )


@pytest.mark.parametrize("frame", [typed_frame([], "metrics"), _metrics()])
def test_metric_timeseries_without_matching_rows_says_no_data(frame):
    fig = plots.metric_timeseries(frame, metric="Throttles", stat="Sum", threshold=0)
    assert "No data" in _texts(fig)
    assert not _lines(fig.axes[0], "series:")
    assert fig.get_suptitle()


def test_rate_timeseries_is_a_percent_axis():
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=6, freq="1h"),
            "resource": ["user-api"] * 6,
            "requests": [100] * 6,
            "errors_5xx": [0, 0, 30, 30, 0, 0],
            "rate": [0, 0, 0.3, 0.3, 0, 0],
        }
    )
    fig = plots.rate_timeseries(frame, threshold=[(0.10, "P1 > 10 %"), (0.05, "P2 > 5 %")])
    (ax,) = fig.axes
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert ax.yaxis.get_major_formatter().format_pct(0.3, 1.0).startswith("30")
    assert sorted(ln.get_ydata()[0] for ln in _lines(ax, "threshold")) == [0.05, 0.10]
    assert "%" in ax.get_ylabel()


def test_figures_stay_out_of_pyplots_registry_and_render_as_png():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plots.metric_timeseries(_metrics(), metric="Errors", stat="Sum")
    assert plt.get_fignums() == before
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width == 1200


def test_resource_colors_are_stable_and_distinct():
    names = [f"fn-{i}" for i in range(12)]
    colours = plots.resource_colors(names)
    assert len(set(colours.values())) == 12
    assert plots.resource_colors(reversed(names)) == colours
    # A name alone (no collisions) keeps the hashed colour it has among few others.
    assert plots.resource_colors([FN_A])[FN_A] == plots.resource_colors([FN_A, FN_B])[FN_A]


# --------------------------------------------------------------------------- bars


def test_error_signature_bars_order_counts_and_wrapping():
    long_sig = "SequelizeConnectionError: connect ETIMEDOUT <ip>:<n> " + "while acquiring " * 20
    sigs = typed_frame(
        [
            {"signature": "TypeError: x is undefined", "count": 37, "log_group": "/aws/lambda/b"},
            {
                "signature": "TimeoutError: Task timed out",
                "count": 412,
                "log_group": "/aws/lambda/a",
            },
            {"signature": long_sig, "count": 180, "log_group": "/aws/lambda/a"},
            {"signature": "ValidationError", "count": 5, "log_group": "/aws/lambda/b"},
        ],
        "error_signatures",
    )
    fig = plots.error_signature_bars(sigs, top=3)
    (ax,) = fig.axes
    bars = sorted(ax.containers[0].patches, key=lambda p: -p.get_y())  # top of the chart first
    assert [p.get_width() for p in bars] == [412.0, 180.0, 37.0]
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    labels = [lbl.get_text() for _, lbl in ticks]
    assert labels[0] == "TimeoutError: Task timed out"
    assert labels[1].count("\n") == 1 and labels[1].endswith("…")
    assert [t.get_text() for t in ax.texts] == ["412", "180", "37"]
    assert ax.get_xlabel() == "occurrences (count)"
    assert "629 errors" not in fig.get_suptitle() and "634 errors" in fig.get_suptitle()
    # Two log groups: bars are coloured by group, with a legend.
    assert bars[0].get_facecolor() == bars[1].get_facecolor() != bars[2].get_facecolor()
    assert fig.legends


def test_error_signature_bars_empty():
    fig = plots.error_signature_bars(typed_frame([], "error_signatures"))
    assert "No data" in _texts(fig)


def test_probe_bars_colour_by_ok():
    probes = typed_frame(
        [
            {"url": "https://a/health", "status_code": 200, "ok": True, "latency_ms": 85.0},
            {"url": "https://b/health", "ok": False, "error": "ReadTimeout"},
        ],
        "probes",
    )
    fig = plots.probe_bars(probes)
    (ax,) = fig.axes
    a, b = sorted(ax.containers[0].patches, key=lambda p: -p.get_y())
    assert a.get_width() == 85.0 and b.get_width() == 0.0
    assert matplotlib.colors.to_hex(a.get_facecolor()) == plots.SEVERITY_COLORS["OK"][0]
    assert matplotlib.colors.to_hex(b.get_facecolor()) == plots.SEVERITY_COLORS["P0"][0]
    assert [t.get_text() for t in ax.texts] == ["HTTP 200", "ReadTimeout"]
    assert "No data" in _texts(plots.probe_bars(typed_frame([], "probes")))


# --------------------------------------------------------------------------- cost


def _cost() -> pd.DataFrame:
    services = {"RDS": 3.0, "Lambda": 1.0, "API Gateway": 0.5, "CloudWatch": 0.25, "S3": 0.1}
    rows = []
    for d in range(10):  # 2026-11-20 .. 2026-11-29
        day = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=d)
        for i, (svc, amt) in enumerate(services.items()):
            rows.append(
                {
                    "start": day,
                    "end": day + timedelta(days=1),
                    "service": svc,
                    "amount": amt + 0.01 * d * i,
                    "unit": "USD",
                    "estimated": d == 9,
                }
            )
    frame = typed_frame(rows, "cost", extra={"service": "string"})
    return frame[["start", "end", "service", "amount", "unit", "estimated"]]


def test_cost_stacked_totals_other_estimated_budget_and_forecast():
    cost = _cost()
    run_rate = {
        "month_to_date": 50.0,
        "daily_run_rate": 2.0,
        "forecast": 110.0,
        "days_elapsed": 29,
        "days_in_month": 30,
        "month_start": datetime(2026, 11, 1, tzinfo=UTC),
        "month_end": datetime(2026, 12, 1, tzinfo=UTC),
    }
    fig = plots.cost_stacked(cost, budget_usd=100, run_rate=run_rate, top=3)
    ax, ax2 = fig.axes[:2]
    groups = [c.get_label() for c in ax.containers]
    assert groups == ["RDS", "Lambda", "API Gateway", "Other"]
    # Stacked totals per day equal the frame's daily sums.
    totals: dict[float, float] = {}
    for container in ax.containers:
        for p in container.patches:
            key = round(p.get_x() + p.get_width() / 2, 6)
            totals[key] = totals.get(key, 0.0) + p.get_height()
    expected = cost.groupby("start")["amount"].sum()
    got = [totals[k] for k in sorted(totals)]
    assert np.allclose(got, expected.sort_index().to_numpy())
    other = ax.containers[3].patches[0].get_height()
    assert other == pytest.approx(0.25 + 0.1)
    # Only the last (estimated) day is hatched.
    hatched = [bool(p.get_hatch()) for p in ax.containers[0].patches]
    assert hatched == [False] * 9 + [True]
    assert "estimated (day not final)" in [t.get_text() for t in ax.get_legend().get_texts()]

    (budget,) = _lines(ax2, "budget")
    assert list(budget.get_ydata()) == [100.0, 100.0]
    (forecast,) = _lines(ax2, "forecast")
    assert list(forecast.get_ydata()) == [50.0, 110.0]
    assert _x_as_datetime(forecast.get_xdata()[1]) == datetime(2026, 12, 1, tzinfo=UTC)
    (mtd,) = _lines(ax2, "mtd")
    assert mtd.get_ydata()[-1] == pytest.approx(cost["amount"].sum())
    assert ax.get_ylabel() == "cost (USD per day)"
    assert ax2.get_ylabel() == "cumulative cost (USD)"
    assert "UTC" in ax.get_xlabel() and "UTC" in ax2.get_xlabel()


def test_cost_stacked_without_run_rate_uses_the_last_month_in_the_data():
    fig = plots.cost_stacked(_cost(), budget_usd=None, run_rate=None)
    ax, ax2 = fig.axes[:2]
    assert len(ax.containers) == 5  # top=6 > 5 services: no "Other"
    assert not _lines(ax2, "budget") and not _lines(ax2, "forecast")
    lo, hi = (_x_as_datetime(x) for x in ax2.get_xlim())
    assert (lo, hi) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_cost_stacked_empty():
    empty = typed_frame([], "cost", extra={"service": "string"})
    fig = plots.cost_stacked(empty, budget_usd=100, run_rate=None)
    assert "No data" in _texts(fig)


# --------------------------------------------------------------------------- tables


def _findings() -> pd.DataFrame:
    at = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    return typed_frame(
        [
            {
                "severity": "P0",
                "check": "api_health",
                "service": "user",
                "resource": "user-api",
                "value": 502,
                "at": at,
                "message": "/health answered 502",
                "playbook": "api-down",
            },
            {
                "severity": "P1",
                "check": "lambda_errors",
                "service": "user",
                "resource": FN_A,
                "value": 150.0,
                "threshold": 100.0,
                "at": at,
                "message": "150 errors <b>in</b> the hour from 03:00 UTC",
                "playbook": "high-error-rate",
            },
            {
                "severity": "P2",
                "check": "apigw_5xx_rate",
                "service": "user",
                "resource": "user-api",
                "value": 0.07345,
                "threshold": 0.05,
                "at": at,
                "message": "7 % 5xx",
            },
            {
                "severity": "P3",
                "check": "lambda_invocations",
                "service": "order",
                "resource": FN_B,
                "value": 12345.6,
                "threshold": 10000,
                "at": at,
                "message": "busy",
            },
        ],
        "findings",
    )


def test_findings_table_styles_by_severity_without_index():
    html = plots.findings_table(_findings()).to_html()
    for sev in ("P0", "P1", "P2", "P3"):
        assert plots.SEVERITY_COLORS[sev][0] in html  # the severity cell
        assert plots.SEVERITY_COLORS[sev][2] in html  # the row tint
    assert "row_heading" not in html and "index_name" not in html
    assert "2026-11-28 03:00\u00a0UTC" in html  # wraps between date and time only
    assert ">12,346<" in html and ">10,000<" in html and ">0.07345<" in html and ">150<" in html
    assert "&lt;b&gt;in&lt;/b&gt;" in html and "<b>in</b>" not in html
    assert "width: 100%" in html and "white-space: nowrap" in html and "overflow-wrap: break-word" in html
    assert html.count("<tr>") == 1 + 4


def test_findings_table_empty():
    html = plots.findings_table(typed_frame([], "findings")).to_html()
    assert "No findings" in html
    assert "row_heading" not in html


def test_status_banner():
    banner = plots.status_banner(
        "P0", report="health", window=(T0, T0 + timedelta(days=1)), counts=_findings()
    )
    assert "P0 — 4 findings (1 P0, 1 P1, 1 P2, 1 P3)" in banner
    assert plots.SEVERITY_COLORS["P0"][0] in banner
    assert "2026-11-27 00:00 → 2026-11-28 00:00 UTC" in banner
    ok = plots.status_banner("OK", report="<cost>", window="35d", counts={})
    assert "OK — no findings" in ok and plots.SEVERITY_COLORS["OK"][0] in ok
    assert "&lt;cost&gt; report" in ok
    one = plots.status_banner("P3", report="maintenance", counts={"P3": 1})
    assert "P3 — 1 finding (1 P3)" in one
    # What the status means, from the runbook's severity table: P3 reads as not urgent.
    assert "low: minor issues only, nothing urgent" in one
    assert "nothing needs attention" in ok and "critical: a service is down" in banner
    # A headline (the incident's verdict) takes the first line; the counts move to the second.
    verdict = plots.status_banner("P0", report="incident", counts={"P0": 3},
                                  headline="product: the service is down (/health answered HTTP 503)")
    assert "P0 — product: the service is down (/health answered HTTP 503)</div>" in verdict
    assert "3 findings (3 P0)" in verdict.split("</div>")[1]


def test_table_formats_cells_and_never_truncates():
    import pandas as pd

    from evilent_nb.plots import table

    long = "Error: Connection terminated\n    at Client._handleErrorWhileConnecting (client.js:179:10)" * 3
    frame = pd.DataFrame({
        "when": [pd.Timestamp("2026-11-28T00:09:18.234Z"), pd.Timestamp("2026-11-28T00:10:00Z")],
        "count": [1234567.0, 2.0],
        "ok": [True, False],
        "groups": [["a", "b"], []],
        "example": [long, "x"],
    })
    html = table(frame, pre=["example"]).to_html()
    assert "2026-11-28 00:09:18 UTC" in html and "2026-11-28 00:10 UTC" in html
    assert "1,234,567" in html and ">yes<" in html and ">no<" in html and "a, b" in html
    assert long.replace("\n", "&#10;")[:20] in html or long[:20] in html
    assert html.count("client.js:179:10") == 3  # nothing cut
    assert "pre-wrap" in html and 'class="row_heading' not in html  # no index


def test_table_empty_and_row_limit():
    import pandas as pd

    from evilent_nb.plots import table

    empty = table(pd.DataFrame(columns=["a"]), empty="No stale log stream").to_html()
    assert "No stale log stream" in empty
    assert "<th" not in empty.replace("<thead>", "") and "text-align: left" in empty  # a statement, no header
    html = table(pd.DataFrame({"n": range(12)}), max_rows=10).to_html()
    assert "2 more rows not shown" in html
    assert "caption-side: bottom" in html  # under the rows it continues
    assert html.count("<tr>") == 11  # header + 10 rows


def test_table_money_and_percent_columns():
    import pandas as pd

    from evilent_nb.plots import table

    frame = pd.DataFrame({"service": ["RDS", "SNS"], "amount": [16.4912, 0.05318], "pct": [164.94, None]})
    html = table(frame, usd=["amount"], percent=["pct"]).to_html()
    assert ">16.49<" in html and ">0.05<" in html and ">164.9 %<" in html
    assert "0.05318" not in html
    assert "th.col1" in html and "th.col2" in html  # headers right-aligned over the numbers


def test_usage_forecast_and_plan_tables():
    import pandas as pd

    from evilent_nb.plots import forecast_table, plan_summary, usage_table

    u = usage_table({"calls": {"logs.FilterLogEvents": 3, "ce.GetCostAndUsage": 1}, "estimated_cost_usd": 0.01})
    assert u.to_dict("records") == [
        {"operation": "ce.GetCostAndUsage", "calls": 1},
        {"operation": "logs.FilterLogEvents", "calls": 3},
        {"operation": "total", "calls": 4},
    ]
    f = forecast_table({"month_to_date": 46.6, "daily_run_rate": 2.05, "forecast": 50.69}, budget_usd=200)
    assert f["usd"].tolist() == [46.6, 2.05, 50.69, 200.0]
    assert f["share_of_budget"].tolist() == [23.3, 1.0, 25.3, 100.0]

    class Data:
        applied = False
        retention_result = pd.DataFrame({"applied": [False, False], "status": ["planned", "planned"]})
        stale_result = pd.DataFrame({"applied": [True], "status": ["done"]})
        alarm_result = pd.DataFrame({"applied": [False], "status": ["error: denied"]})

    p = plan_summary(Data())
    assert p[["planned", "applied", "errors"]].values.tolist() == [[2, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert p["mode"].str.startswith("dry run").all()
