"""Views: matplotlib figures and styled tables built from the package's frames.

Every plotting function returns a :class:`matplotlib.figure.Figure` built with the object
API (never through pyplot, so nothing accumulates in pyplot's figure registry and library
code never calls ``plt.show()``). The figures are :class:`NotebookFigure` instances, which
render themselves as PNG in Jupyter whatever the matplotlib backend (papermill runs the
report notebooks with ``MPLBACKEND=agg``, where pyplot would show nothing).

Conventions shared by all views:

- 12 inches wide at 100 dpi (1,200 px), a title, axis labels with units;
- time axes in UTC, labelled ``Time (UTC)``, with matplotlib's concise date formatter;
- the same colour for the same resource across figures (:func:`resource_colors`);
- legends outside the data area;
- an empty input gives a figure with a "No data" note instead of an error.

:func:`findings_table` returns a pandas Styler and :func:`status_banner` an HTML string;
display both with ``IPython.display`` in notebooks.
"""

from __future__ import annotations

import html
import io
import textwrap
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, PercentFormatter
from matplotlib.transforms import blended_transform_factory
from pandas.io.formats.style import Styler

from evilent_nb.frames import typed_frame

__all__ = [
    "NotebookFigure",
    "SEVERITY_COLORS",
    "cost_stacked",
    "error_signature_bars",
    "findings_table",
    "metric_timeseries",
    "probe_bars",
    "rate_timeseries",
    "resource_colors",
    "status_banner",
    "timeseries",
]

WIDTH_IN = 12.0
DPI = 100
PANEL_HEIGHT_IN = 4.2

# Severity palette shared by figures, the findings table and the banner:
# (strong colour, text colour on it, light row tint).
SEVERITY_COLORS: dict[str, tuple[str, str, str]] = {
    "P0": ("#7f0000", "#ffffff", "#f6d5d5"),
    "P1": ("#d7301f", "#ffffff", "#fde3d9"),
    "P2": ("#f0a202", "#1a1a1a", "#fff2cf"),
    "P3": ("#9ecae1", "#1a1a1a", "#eef5fb"),
    "OK": ("#2e7d32", "#ffffff", "#e8f5e9"),
    "ERROR": ("#4a4a4a", "#ffffff", "#eeeeee"),
}
_SEVERITIES = ("P0", "P1", "P2", "P3")

# tab20's dark then light hues, without red (kept for thresholds/onset) and grey (kept for
# "Other" and change markers).
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
)
_OTHER_COLOR = "#b0b0b0"
_CHANGE_COLOR = "#555555"
_ONSET_COLOR = "#c00000"
_THRESHOLD_COLORS = ("#d7301f", "#f0a202", "#6a51a3", "#333333")
# Line colours of severity thresholds (P3's table colour is too light for a dashed line).
_THRESHOLD_SEVERITY = {"P0": "#7f0000", "P1": "#d7301f", "P2": "#f0a202", "P3": "#3b75af"}
# Resource kind per namespace, for default titles.
_RESOURCE_KIND = {"AWS/Lambda": "function", "AWS/ApiGateway": "API", "AWS/RDS": "DB instance"}

# Units of the CloudWatch metrics the package pulls (metrics.py presets).
_METRIC_UNITS: dict[str, str] = {
    "Invocations": "count",
    "Errors": "count",
    "Throttles": "count",
    "ConcurrentExecutions": "count",
    "Duration": "ms",
    "Count": "requests",
    "4XXError": "count",
    "5XXError": "count",
    "Latency": "ms",
    "IntegrationLatency": "ms",
    "DatabaseConnections": "connections",
    "CPUUtilization": "%",
    "FreeStorageSpace": "bytes",
    "FreeableMemory": "bytes",
}
_COUNT_STATS = {"Sum", "SampleCount"}


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that renders itself as PNG in Jupyter.

    IPython only registers a PNG formatter for figures once pyplot has loaded the inline
    backend; this figure carries its own ``_repr_png_`` so it shows as a cell result (and
    in nbconvert's HTML) under any backend, ``agg`` included.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI)
        return buf.getvalue()


# --------------------------------------------------------------------------- helpers


def _figure(nrows: int = 1, *, height: float = PANEL_HEIGHT_IN, **subplots: Any):
    fig = NotebookFigure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False, **subplots)[:, 0]
    for ax in axes:
        _tidy(ax)
    return fig, axes


def _title(fig: Figure, text: str) -> None:
    fig.suptitle(text, x=0.01, ha="left", fontsize=13, fontweight="bold")


def _legend_below(fig: Figure, ax: Axes) -> int:
    """Legend under the axes, in as many columns as the labels allow at 1,200 px; its rows."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return 0
    longest = max(len(label) for label in labels)
    per_row = max(1, min(len(labels), int(1100 // (longest * 6.2 + 45))))
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=per_row,
        frameon=False,
        fontsize=9,
    )
    return -(-len(labels) // per_row)


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _utc_axis(ax: Axes, *, show_offset: bool = True) -> None:
    locator = mdates.AutoDateLocator(tz="UTC", minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, tz="UTC", show_offset=show_offset)
    )
    ax.set_xlabel("Time (UTC)")


def _no_data(ax: Axes, note: str = "No data") -> None:
    ax.text(
        0.5,
        0.5,
        note,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=14,
        color="#777777",
        gid="no-data",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _legend_outside(ax: Axes, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            frameon=False,
            fontsize=9,
            **kw,
        )


def _short(text: Any, width: int = 40) -> str:
    """Middle-ellipsis, so both a name's stack prefix and its random suffix stay visible."""
    s = "" if text is None or text is pd.NA else str(text)
    if len(s) <= width:
        return s
    keep = width - 1
    return s[: keep - keep // 3] + "…" + s[-(keep // 3) :]


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _pydt(series: pd.Series) -> np.ndarray:
    # tz-aware datetimes (not datetime64): the artists keep their UTC tzinfo.
    return np.array([ts.to_pydatetime() for ts in series], dtype=object)


def _fmt_utc(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _period_text(times: pd.Series) -> str | None:
    diffs = times.drop_duplicates().sort_values().diff().dropna()
    if diffs.empty:
        return None
    step = diffs.median()
    seconds = int(step.total_seconds())
    if seconds <= 0:
        return None
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _step(times: pd.Series) -> pd.Timedelta | None:
    """The series' period: the most common gap between its distinct times."""
    diffs = pd.Series(times.drop_duplicates().sort_values()).diff().dropna()
    if diffs.empty or diffs.min() <= pd.Timedelta(0):
        return None
    return diffs.mode().iloc[0]


def _bounds(window: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if window is None:
        return None
    if isinstance(window, Mapping):
        start, end = window.get("start"), window.get("end")
    elif hasattr(window, "start") and hasattr(window, "end"):
        start, end = window.start, window.end
    else:
        start, end = window
    return _utc(start), _utc(end)


def _span_window(ax: Axes, window: Any, first: Any) -> None:
    """x limits = the window; data before it (a baseline) on a labelled grey band."""
    bounds = _bounds(window)
    if bounds is None:
        return
    start, end = bounds
    lo = start
    if first is not None and not pd.isna(first) and _utc(first) < start:
        lo = _utc(first)
        ax.axvspan(lo.to_pydatetime(), start.to_pydatetime(), color="#000000", alpha=0.06, lw=0,
                   label="before the window", gid="before-window", zorder=0)
    ax.set_xlim(lo.to_pydatetime(), end.to_pydatetime())


def resource_colors(names: Iterable[Any]) -> dict[str, str]:
    """Map names to colours that stay the same from one figure to the next.

    A name's colour comes from a hash of the name, so a function keeps its colour in every
    figure it appears in. The hash picks one of eight strong hues; a collision within one
    call takes the next free strong hue, then a light one (in sorted name order, so the
    result does not depend on input order).

    Parameters
    ----------
    names
        Resource names (functions, APIs, DB instances, services, log groups...).

    Returns
    -------
    dict
        ``{name: "#rrggbb"}``.

    Examples
    --------
    >>> colors = resource_colors(["fn-b", "fn-a"])
    >>> colors == resource_colors(["fn-a", "fn-b"])
    True
    """
    unique = sorted({str(n) for n in names if n is not None and n is not pd.NA})
    n = len(_PALETTE)
    strong = n // 2
    taken: set[int] = set()
    out: dict[str, str] = {}
    for name in unique:
        slot = zlib.crc32(name.encode()) % strong
        if len(taken) < n:
            while slot in taken:
                slot = (slot + 1) % n
        taken.add(slot)
        out[name] = _PALETTE[slot]
    return out


def _thresholds(
    threshold: float | Sequence[tuple[float, str]] | None, label: str | None
) -> list[tuple[float, str]]:
    if threshold is None:
        return []
    if isinstance(threshold, int | float | np.number):
        return [(float(threshold), label or f"threshold {float(threshold):g}")]
    return [(float(v), str(lbl)) for v, lbl in threshold]


def _threshold_color(label: str, i: int) -> str:
    for sev in _SEVERITIES:
        if label.upper().startswith(sev) or f" {sev}" in label.upper():
            return _THRESHOLD_SEVERITY[sev]
    return _THRESHOLD_COLORS[i % len(_THRESHOLD_COLORS)]


def _draw_thresholds(ax: Axes, thresholds: list[tuple[float, str]]) -> None:
    for i, (value, label) in enumerate(thresholds):
        ax.axhline(
            value,
            color=_threshold_color(label, i),
            linestyle="--",
            linewidth=1.4,
            label=label,
            gid="threshold",
            zorder=1.5,
        )


_TIME_COLUMNS = ("time", "timestamp", "at")
_NAME_COLUMNS = ("stack", "resource", "logical_id", "function", "name")
# "kind" (deploy, config change) first: a trigger's "detail" is a sentence, too long for a label.
_DETAIL_COLUMNS = ("kind", "status", "change", "detail", "message", "reason")


def _change_rows(changes: pd.DataFrame | None) -> list[tuple[pd.Timestamp, str]]:
    """(time, label) per change row; rows without a time are dropped."""
    if changes is None or len(changes) == 0:
        return []
    time_col = next((c for c in _TIME_COLUMNS if c in changes.columns), None)
    if time_col is None:
        raise ValueError(
            f"changes needs a time column (one of {', '.join(_TIME_COLUMNS)}); "
            f"it has {', '.join(map(str, changes.columns))}"
        )
    name_col = next((c for c in _NAME_COLUMNS if c in changes.columns), None)
    detail_col = next((c for c in _DETAIL_COLUMNS if c in changes.columns), None)
    out: list[tuple[pd.Timestamp, str]] = []
    times = pd.to_datetime(changes[time_col], utc=True, errors="coerce", format="mixed")
    for i, t in enumerate(times):
        if pd.isna(t):
            continue
        row = changes.iloc[i]
        if "label" in changes.columns and not pd.isna(row["label"]):
            label = str(row["label"])
        else:
            parts = [
                str(row[c]) for c in (name_col, detail_col) if c is not None and not pd.isna(row[c])
            ]
            label = " ".join(parts) or "change"
            label = f"{label} {t:%H:%M}"
        out.append((t, label))
    return out


def _draw_events(
    ax: Axes,
    changes: list[tuple[pd.Timestamp, str]],
    onset: Any,
) -> None:
    """Vertical markers: one per change row, plus the onset; labels are grouped when close."""
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, (t, _) in enumerate(changes):
        ax.axvline(
            t.to_pydatetime(),
            color=_CHANGE_COLOR,
            linestyle=":",
            linewidth=1.3,
            label="change / deploy" if i == 0 else "_nolegend_",
            gid="change",
            zorder=1.6,
        )
    onset_ts = None if onset is None or pd.isna(onset) else _utc(onset)
    if onset_ts is not None:
        ax.axvline(
            onset_ts.to_pydatetime(),
            color=_ONSET_COLOR,
            linestyle="-",
            linewidth=2.0,
            alpha=0.85,
            label=f"onset {onset_ts:%H:%M} UTC",
            gid="onset",
            zorder=1.7,
        )
    if not changes:
        return
    # Cluster change labels closer than ~2 % of the x span so texts don't pile up.
    lo, hi = ax.get_xlim()
    min_gap = (hi - lo) * 0.02
    ordered = sorted(changes, key=lambda c: c[0])
    groups: list[list[tuple[pd.Timestamp, str]]] = []
    for item in ordered:
        x = mdates.date2num(item[0].to_pydatetime())
        if groups and x - mdates.date2num(groups[-1][-1][0].to_pydatetime()) < min_gap:
            groups[-1].append(item)
        else:
            groups.append([item])
    # Horizontal labels at the top, left of their line (the onset usually follows a change, so
    # its line stays clear), staggered over three rows so neighbours do not overprint.
    for i, group in enumerate(groups):
        t, label = group[0]
        text = _short(label, 44) + (f" (+{len(group) - 1})" if len(group) > 1 else "")
        x = mdates.date2num(t.to_pydatetime())
        near_left = (x - lo) < (hi - lo) * 0.3
        ax.annotate(
            text,
            (x, 0.97 - 0.09 * (i % 3)),  # a number: annotate does not convert dates
            xycoords=trans,
            xytext=(4 if near_left else -4, 0),
            textcoords="offset points",
            ha="left" if near_left else "right",
            va="top",
            fontsize=8,
            color=_CHANGE_COLOR,
            gid="change-label",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0},
        )


# --------------------------------------------------------------------------- time series


def timeseries(
    frame: pd.DataFrame,
    *,
    value_col: str,
    time_col: str = "timestamp",
    group_col: str | None = "resource",
    title: str,
    ylabel: str,
    threshold: float | Sequence[tuple[float, str]] | None = None,
    threshold_label: str | None = None,
    changes: pd.DataFrame | None = None,
    onset: Any = None,
    groups: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    percent: bool = False,
    yformatter: Any = None,
    window: Any = None,
    steps: bool = False,
) -> Figure:
    """Line chart of any tidy time-series frame: one line per group, UTC time axis.

    The general form behind :func:`metric_timeseries` and :func:`rate_timeseries`.

    Parameters
    ----------
    frame
        A long frame with a time column, a value column and (optionally) a group column.
    value_col, time_col, group_col
        Column names; ``group_col=None`` draws a single line.
    title, ylabel
        Figure title and y-axis label (include the unit).
    threshold
        A number (one dashed line labelled ``threshold_label``) or a list of
        ``(value, label)`` pairs, e.g. ``[(100, "P1 > 100/h"), (10, "P2 > 10/h")]``. A
        label starting with a severity (``P0``..``P3``) takes that severity's colour.
    changes
        Deploys and configuration changes (e.g. suspected triggers, stack events): a frame
        with ``time``, ``timestamp`` or ``at`` and a ``label`` column, or name/detail
        columns (``stack``/``resource``/``logical_id`` and ``detail``/``status``) from
        which a label is made. One dotted vertical line per row.
    onset
        The error onset, drawn as a solid red vertical line.
    groups
        Only these groups (default: all, sorted).
    colors
        ``{group: colour}``; default :func:`resource_colors`.
    percent
        Values are fractions (0.10 = 10 %): the y axis is shown in percent.
    yformatter
        A matplotlib tick formatter for the y axis (overrides ``percent``).
    window
        The report's window (a :class:`~evilent_nb.timeframe.Window`, a ``(start, end)``
        pair or a ``{"start", "end"}`` dict): the x axis spans it. Data before its start
        (a baseline, a lookback) stays visible on a grey band labelled "before the window".
    steps
        The values are per-period aggregates stamped at their period's start (CloudWatch
        buckets): draw each as a flat step over its whole period, so a value is never
        read as belonging to an earlier time.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> f = typed_frame([{"timestamp": "2026-11-28T03:00Z", "resource": "fn", "value": 1.0}],
    ...                 "metrics")
    >>> fig = timeseries(f, value_col="value", title="Errors", ylabel="errors (count)")
    >>> len(fig.axes[0].get_lines())
    1
    """
    fig, (ax,) = _figure()
    _title(fig, title)
    ax.set_ylabel(ylabel)
    data = frame
    if group_col is not None and groups is not None:
        data = data[data[group_col].isin(list(groups))]
    if len(data) > 0:
        data = data.dropna(subset=[time_col]).copy()
        data[time_col] = pd.to_datetime(data[time_col], utc=True)
    if len(data) == 0:
        _no_data(ax)
        fig.set_figheight(2.5)
        return fig
    if group_col is None:
        names: list[str] = [value_col]
        parts = {value_col: data}
    else:
        names = sorted(str(g) for g in data[group_col].dropna().unique())
        parts = {name: data[data[group_col].astype(str) == name] for name in names}
    palette = dict(colors) if colors else resource_colors(names)
    many = len(names) > 8
    step = _step(data[time_col]) if steps else None
    for name in names:
        part = parts[name].sort_values(time_col)
        xs = list(_pydt(part[time_col]))
        ys = part[value_col].to_numpy(dtype=float)
        if step is not None:
            # The last bucket ends one period after its stamp: repeat its value there.
            xs.append((part[time_col].iloc[-1] + step).to_pydatetime())
            ys = np.append(ys, ys[-1])
        ax.plot(
            np.array(xs, dtype=object),
            ys,
            label=_short(name, 60),
            color=palette.get(name),
            linewidth=1.2 if many else 1.6,
            marker="o" if len(part) <= 3 and step is None else None,
            markersize=4,
            drawstyle="steps-post" if step is not None else "default",
            gid=f"series:{name}",
        )
    _draw_thresholds(ax, _thresholds(threshold, threshold_label))
    ax.margins(x=0.01)
    _span_window(ax, window, data[time_col].min())
    _draw_events(ax, _change_rows(changes), onset)
    _utc_axis(ax)
    if yformatter is not None:
        ax.yaxis.set_major_formatter(yformatter)
    elif percent:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    rows = _legend_below(fig, ax)
    # Keep the plot area about the same height however many legend rows there are.
    fig.set_figheight(PANEL_HEIGHT_IN + 0.2 * max(0, rows - 2))
    return fig


def metric_timeseries(
    metrics: pd.DataFrame,
    *,
    metric: str,
    stat: str,
    title: str | None = None,
    threshold: float | Sequence[tuple[float, str]] | None = None,
    threshold_label: str | None = None,
    changes: pd.DataFrame | None = None,
    onset: Any = None,
    ylabel: str | None = None,
    resources: Sequence[str] | None = None,
    namespace: str | None = None,
    colors: Mapping[str, str] | None = None,
    window: Any = None,
) -> Figure:
    """One CloudWatch metric over time, one line per resource.

    Each value is drawn as a flat step over its period (CloudWatch stamps a bucket at its
    start), so an hourly value never appears to rise before the hour it sums.

    Parameters
    ----------
    metrics
        The long frame of :func:`evilent_nb.metrics.metric_data` (``timestamp, namespace,
        metric, stat, label, resource, value`` + dimension columns).
    metric, stat
        Which series to draw, e.g. ``metric="Errors", stat="Sum"``.
    title
        Default: ``"<namespace> <metric> (<stat>) by resource"``.
    threshold, threshold_label
        A horizontal dashed line, or several as ``[(value, label), ...]`` (see
        :func:`timeseries`).
    changes
        Deploy/change markers: suspected triggers or stack events (see :func:`timeseries`).
    onset
        The error onset (a timestamp), marked with a solid red line.
    ylabel
        Default: the metric, the statistic and its unit, per period for counts (e.g.
        ``"Errors (Sum, count per 1 h)"``).
    resources
        Only these resources (default: all).
    namespace
        Only this namespace, when a metric name exists in several.
    colors
        ``{resource: colour}``; default :func:`resource_colors`.
    window
        The report's window: the x axis spans it (see :func:`timeseries`).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; the x axis is UTC time.

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> m = typed_frame([{"timestamp": "2026-11-28T03:00Z", "namespace": "AWS/Lambda",
    ...                   "metric": "Errors", "stat": "Sum", "resource": "fn", "value": 150}],
    ...                  "metrics")
    >>> fig = metric_timeseries(m, metric="Errors", stat="Sum",
    ...                         threshold=[(100, "P1 > 100/h"), (10, "P2 > 10/h")])
    >>> fig.axes[0].get_ylabel()
    'Errors (Sum, count per period)'
    """
    sel = metrics[(metrics["metric"] == metric) & (metrics["stat"] == stat)]
    if namespace is not None:
        sel = sel[sel["namespace"] == namespace]
    if resources is not None:
        sel = sel[sel["resource"].isin(list(resources))]
    ns = namespace
    if ns is None and len(sel) > 0:
        ns = str(sel["namespace"].dropna().iloc[0]) if sel["namespace"].notna().any() else None
    unit = _METRIC_UNITS.get(metric)
    yformatter = None
    if ylabel is None:
        period = _period_text(sel["timestamp"]) if len(sel) > 1 else None
        if unit == "bytes":
            ylabel = f"{metric} ({stat}, bytes)"
            yformatter = EngFormatter(unit="B")
        elif unit is not None and stat in _COUNT_STATS:
            ylabel = f"{metric} ({stat}, {unit} per {period or 'period'})"
        elif unit is not None:
            ylabel = f"{metric} ({stat}, {unit})"
        else:
            ylabel = f"{metric} ({stat})"
    if title is None:
        kind = _RESOURCE_KIND.get(ns or "", "resource")
        title = f"{ns + ' ' if ns else ''}{metric} ({stat}) by {kind}"
    return timeseries(
        sel,
        value_col="value",
        time_col="timestamp",
        group_col="resource",
        title=title,
        ylabel=ylabel,
        threshold=threshold,
        threshold_label=threshold_label,
        changes=changes,
        onset=onset,
        colors=colors,
        yformatter=yformatter,
        window=window,
        steps=True,
    )


def rate_timeseries(
    frame: pd.DataFrame,
    *,
    value_col: str = "rate",
    time_col: str = "timestamp",
    group_col: str | None = "resource",
    title: str = "API Gateway 5xx rate by API",
    ylabel: str = "5xx rate (% of requests)",
    fraction: bool = True,
    threshold: float | Sequence[tuple[float, str]] | None = None,
    threshold_label: str | None = None,
    changes: pd.DataFrame | None = None,
    onset: Any = None,
    groups: Sequence[str] | None = None,
    colors: Mapping[str, str] | None = None,
    window: Any = None,
) -> Figure:
    """A rate over time (5xx rate, error rate) on a percent axis, one line per group.

    Each rate is drawn as a flat step over its period, like :func:`metric_timeseries`.

    Parameters
    ----------
    frame
        E.g. :func:`evilent_nb.metrics.apigw_5xx_rate` (``timestamp, resource, requests,
        errors_5xx, rate``) or :func:`evilent_nb.metrics.error_rate` (``value_col=
        "error_rate"``).
    fraction
        Values (and thresholds) are fractions, 0.10 = 10 % (the rulebook's convention);
        ``False`` when they are already percent.
    threshold, threshold_label, changes, onset, groups, colors, window
        As in :func:`timeseries`; thresholds are in the same unit as the values.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> r = typed_frame([{"timestamp": "2026-11-28T03:00Z", "resource": "user-api",
    ...                   "rate": 0.12}], {"timestamp": "datetime64[ns, UTC]",
    ...                   "resource": "string", "rate": "float64"})
    >>> fig = rate_timeseries(r, threshold=[(0.10, "P1 > 10 %"), (0.05, "P2 > 5 %")])
    """
    formatter = PercentFormatter(xmax=1.0 if fraction else 100.0, decimals=None)
    return timeseries(
        frame,
        value_col=value_col,
        time_col=time_col,
        group_col=group_col,
        title=title,
        ylabel=ylabel,
        threshold=threshold,
        threshold_label=threshold_label,
        changes=changes,
        onset=onset,
        groups=groups,
        colors=colors,
        yformatter=formatter,
        window=window,
        steps=True,
    )


# --------------------------------------------------------------------------- bars


def _wrap(text: Any, width: int = 60, lines: int = 2) -> str:
    s = " ".join(str(text).split())
    wrapped = textwrap.wrap(s, width=width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return "\n".join(wrapped)


def error_signature_bars(
    signatures: pd.DataFrame,
    *,
    top: int = 10,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Horizontal bars of the most frequent error signatures, most frequent on top.

    Parameters
    ----------
    signatures
        The frame of :func:`evilent_nb.logs.error_signatures` (``signature, count,
        first_seen, last_seen, example, log_group``).
    top
        How many signatures to draw.
    title
        Default ``"Top error signatures"``.
    colors
        ``{log_group: colour}``; bars are coloured by log group when there are several.

    Returns
    -------
    matplotlib.figure.Figure
        Bars carry the count as a label at their end; long signatures are wrapped to two
        lines and shortened.

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> s = typed_frame([{"signature": "TimeoutError <n>", "count": 12}], "error_signatures")
    >>> fig = error_signature_bars(s)
    """
    data = signatures.sort_values("count", ascending=False, kind="stable").head(top)
    n = len(data)
    height = max(3.5, 0.5 * n + 1.4)
    fig, (ax,) = _figure(height=height)
    total = int(signatures["count"].sum()) if len(signatures) else 0
    if title is None:
        title = f"Top error signatures ({total:,} errors)" if n else "Top error signatures"
    _title(fig, title)
    ax.set_xlabel("occurrences (count)")
    if n == 0:
        _no_data(ax)
        return fig
    ax.grid(False)
    ax.grid(True, axis="x", alpha=0.3)
    groups = data["log_group"].astype("string").fillna("(unknown)")
    palette = dict(colors) if colors else resource_colors(groups)
    several = groups.nunique() > 1
    ys = np.arange(n)[::-1]  # first row (most frequent) at the top
    bar_colors = [palette.get(g, _PALETTE[0]) if several else _PALETTE[0] for g in groups]
    bars = ax.barh(
        ys,
        data["count"].to_numpy(dtype=float),
        color=bar_colors,
        height=0.7,
        gid="signatures",
    )
    ax.bar_label(bars, labels=[f"{int(c):,}" for c in data["count"]], padding=3, fontsize=9)
    ax.set_yticks(ys, [_wrap(s, 70) for s in data["signature"]], fontsize=9)
    ax.set_ylim(-0.6, n - 0.4)
    ax.margins(x=0.08)
    if several:
        handles = [Patch(color=palette.get(g), label=_short(g, 60)) for g in dict.fromkeys(groups)]
        fig.legend(
            handles=handles,
            title="log group",
            loc="outside lower center",
            fontsize=8,
            title_fontsize=8,
            frameon=False,
            ncols=min(len(handles), 2),
        )
    return fig


def probe_bars(probes: pd.DataFrame, *, title: str = "/health probes") -> Figure:
    """Latency of each ``/health`` probe, green when it answered 2xx and red otherwise.

    Parameters
    ----------
    probes
        The frame of :func:`evilent_nb.probes.probe` (``url, status_code, ok, latency_ms,
        error``).

    Returns
    -------
    matplotlib.figure.Figure
        One bar per URL, annotated with the status code or the error.

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> p = typed_frame([{"url": "https://x/health", "status_code": 200, "ok": True,
    ...                   "latency_ms": 85.0}], "probes")
    >>> fig = probe_bars(p)
    """
    n = len(probes)
    fig, (ax,) = _figure(height=max(3.0, 0.45 * n + 1.4))
    _title(fig, title)
    ax.set_xlabel("latency (ms)")
    if n == 0:
        _no_data(ax)
        return fig
    ax.grid(False)
    ax.grid(True, axis="x", alpha=0.3)
    ys = np.arange(n)[::-1]
    latency = pd.to_numeric(probes["latency_ms"], errors="coerce").fillna(0.0).to_numpy(float)
    ok = probes["ok"].fillna(False).astype(bool).to_numpy()
    bars = ax.barh(
        ys,
        latency,
        color=[SEVERITY_COLORS["OK"][0] if o else SEVERITY_COLORS["P0"][0] for o in ok],
        height=0.6,
        gid="probes",
    )
    notes = []
    for code, err, good in zip(probes["status_code"], probes["error"], ok, strict=True):
        code_s = "" if pd.isna(code) else f"HTTP {int(code)}"
        err_s = "" if pd.isna(err) or str(err).startswith(code_s or "\0") else _short(err, 50)
        notes.append(code_s if good else " · ".join(p for p in (code_s, err_s) if p) or "failed")
    ax.bar_label(bars, labels=notes, padding=3, fontsize=9)
    ax.set_yticks(ys, [_short(u, 70) for u in probes["url"]], fontsize=9)
    ax.margins(x=0.3)  # room for the labels at the bars' ends
    ax.legend(
        handles=[
            Patch(color=SEVERITY_COLORS["OK"][0], label="answered 2xx"),
            Patch(color=SEVERITY_COLORS["P0"][0], label="failed"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=2,
        frameon=False,
        fontsize=9,
    )
    return fig


# --------------------------------------------------------------------------- cost


def _month_bounds(day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = day.normalize().replace(day=1)
    return start, start + pd.offsets.MonthBegin(1)


def cost_stacked(
    cost: pd.DataFrame,
    *,
    budget_usd: float | None = None,
    run_rate: Mapping[str, Any] | None = None,
    top: int = 6,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Daily cost stacked by service, and month-to-date against the budget and run-rate.

    Parameters
    ----------
    cost
        The DAILY frame of :func:`evilent_nb.cost.cost_and_usage` grouped by service
        (``start, end, service, amount, unit, estimated``).
    budget_usd
        The monthly budget, drawn as a dashed line on the month-to-date panel.
    run_rate
        The dict of :func:`evilent_nb.cost.run_rate_forecast` (``month_to_date,
        daily_run_rate, forecast, days_elapsed, days_in_month, month_start, month_end``):
        drawn as a dashed projection from today's month-to-date to the month-end forecast.
    top
        The ``top`` services by total cost get their own colour; the rest are "Other".
    title
        Default ``"Daily cost by service"``.
    colors
        ``{service: colour}``; default :func:`resource_colors`.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: the stacked daily bars (estimated days hatched) and the cumulative
        month-to-date of the current month (the month of ``run_rate["month_start"]``, else of
        the last day in ``cost``).

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> c = typed_frame([{"start": "2026-11-01", "end": "2026-11-02", "service": "AWS Lambda",
    ...                   "amount": 1.5, "unit": "USD"}], "cost", extra={"service": "string"})
    >>> fig = cost_stacked(c, budget_usd=100)
    """
    data = cost.dropna(subset=["start"]).copy() if len(cost) else cost
    if len(data) == 0:
        fig, (ax,) = _figure(height=3.5)
        _title(fig, title or "Daily cost by service")
        ax.set_ylabel("cost (USD per day)")
        _no_data(ax)
        return fig
    fig, (ax, ax2) = _figure(2, height=8.0, gridspec_kw={"height_ratios": [3, 2]})
    unit = str(data["unit"].dropna().iloc[0]) if data["unit"].notna().any() else "USD"
    _title(fig, title or "Daily cost by service")
    ax.set_ylabel(f"cost ({unit} per day)")
    ax2.set_title("Month to date vs budget", loc="left", fontsize=11, fontweight="bold")
    ax2.set_ylabel(f"cumulative cost ({unit})")
    data["day"] = pd.to_datetime(data["start"], utc=True).dt.floor("D")
    data["service"] = data["service"].astype("string").fillna("(no service)")
    data["amount"] = pd.to_numeric(data["amount"], errors="coerce").fillna(0.0)
    totals = data.groupby("service")["amount"].sum().sort_values(ascending=False, kind="stable")
    keep = list(totals.index[:top])
    data["group"] = data["service"].where(data["service"].isin(keep), "Other")
    order = keep + (["Other"] if (data["group"] == "Other").any() else [])
    wide = (
        data.pivot_table(
            index="day", columns="group", values="amount", aggfunc="sum", fill_value=0.0
        )
        .reindex(columns=order, fill_value=0.0)
        .sort_index()
    )
    estimated = data.groupby("day")["estimated"].any().reindex(wide.index, fill_value=False)
    palette = dict(colors) if colors else resource_colors(keep)
    palette.setdefault("Other", _OTHER_COLOR)

    centres = _pydt(pd.Series(wide.index + pd.Timedelta(hours=12)))
    bottom = np.zeros(len(wide))
    hatches = ["//" if e else None for e in estimated]
    for group in order:
        values = wide[group].to_numpy(dtype=float)
        bars = ax.bar(
            centres,
            values,
            bottom=bottom,
            width=timedelta(hours=19),
            color=palette[group],
            label=_short(group, 36),
            gid=f"cost:{group}",
            edgecolor="white",
            linewidth=0.4,
        )
        for bar, hatch in zip(bars, hatches, strict=True):
            if hatch:
                bar.set_hatch(hatch)
                bar.set_edgecolor("#333333")
        bottom += values
    ax.margins(x=0.01)
    _utc_axis(ax)
    ax.set_xlabel("Day (UTC)")
    handles, labels = ax.get_legend_handles_labels()
    if estimated.any():
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="//"))
        labels.append("estimated (day not final)")
    ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize=9,
    )

    # Month-to-date panel: the run-rate month if given, else the last month in the data.
    if run_rate and run_rate.get("month_start") is not None:
        m_start = _utc(run_rate["month_start"]).floor("D")
        m_end = (
            _utc(run_rate["month_end"])
            if run_rate.get("month_end") is not None
            else _month_bounds(m_start)[1]
        )
    else:
        m_start, m_end = _month_bounds(wide.index.max())
    daily = bottom.copy()
    in_month = (wide.index >= m_start) & (wide.index < m_end)
    month_days = wide.index[in_month]
    cumulative = np.cumsum(daily[in_month])
    _tidy(ax2)
    if len(month_days):
        ends = month_days + pd.Timedelta(days=1)
        xs = [m_start.to_pydatetime(), *_pydt(pd.Series(ends))]
        ys = [0.0, *cumulative]
        ax2.plot(
            xs,
            ys,
            color="#1f4e79",
            marker="o",
            markersize=3,
            linewidth=1.8,
            label="month to date (actual)",
            gid="mtd",
        )
    mtd_value = float(cumulative[-1]) if len(cumulative) else 0.0
    if run_rate and run_rate.get("forecast") is not None:
        mtd = float(run_rate.get("month_to_date", mtd_value) or 0.0)
        if run_rate.get("days_elapsed") is not None:
            x0 = m_start + pd.Timedelta(days=float(run_rate["days_elapsed"]))
        elif len(month_days):
            x0 = month_days.max() + pd.Timedelta(days=1)
        else:
            x0 = m_start
        forecast = float(run_rate["forecast"])
        rate = run_rate.get("daily_run_rate")
        rate_txt = f", {float(rate):,.2f} {unit}/day" if rate is not None else ""
        ax2.plot(
            [x0.to_pydatetime(), m_end.to_pydatetime()],
            [mtd, forecast],
            color="#1f4e79",
            linestyle="--",
            linewidth=1.5,
            label=f"run-rate forecast {forecast:,.2f} {unit}{rate_txt}",
            gid="forecast",
        )
        ax2.annotate(
            f"{forecast:,.2f}",
            (m_end.to_pydatetime(), forecast),
            xytext=(-4, 6),
            textcoords="offset points",
            ha="right",
            fontsize=9,
            color="#1f4e79",
        )
    if budget_usd is not None:
        over = max(mtd_value, float((run_rate or {}).get("forecast") or 0.0)) > budget_usd
        ax2.axhline(
            float(budget_usd),
            color=SEVERITY_COLORS["P1"][0] if over else "#555555",
            linestyle="--",
            linewidth=1.4,
            label=f"monthly budget {float(budget_usd):,.0f} {unit}",
            gid="budget",
        )
    ax2.set_xlim(m_start.to_pydatetime(), m_end.to_pydatetime())
    # Headroom so the forecast's value label stays inside the panel.
    ax2.set_ylim(0, ax2.get_ylim()[1] * 1.1)
    _utc_axis(ax2, show_offset=False)
    ax2.set_xlabel(f"Day (UTC), {m_start:%B %Y}")
    _legend_outside(ax2)
    return fig


# --------------------------------------------------------------------------- tables


def _compact(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


_FINDINGS_CSS = [
    {
        "selector": "",
        "props": "width: 100%; border-collapse: collapse; table-layout: auto; font-size: 0.9em;",
    },
    {
        # Headers never break inside a word (the page's own CSS would let them).
        "selector": "th",
        "props": "text-align: left; padding: 4px 8px; background: #f3f3f3;"
        " border-bottom: 2px solid #999; white-space: nowrap; overflow-wrap: normal;",
    },
    {
        # No white-space here: an id+element rule would outrank the per-column cell rules.
        "selector": "td",
        "props": "padding: 4px 8px; vertical-align: top; overflow-wrap: break-word;"
        " border-bottom: 1px solid #ddd;",
    },
    {
        "selector": "caption",
        "props": "caption-side: top; text-align: left; font-weight: bold; padding: 4px 0;",
    },
]


def findings_table(findings: pd.DataFrame, *, caption: str | None = None) -> Styler:
    """The findings frame as a table styled by severity.

    Parameters
    ----------
    findings
        A findings frame (``severity, check, service, resource, value, threshold, at,
        message, playbook``), e.g. from :mod:`evilent_nb.rules`; shown in its own order.
    caption
        An optional caption above the table.

    Returns
    -------
    pandas.io.formats.style.Styler
        The severity cell in the severity's colour (P0 dark red, P1 red, P2 amber, P3 light
        blue) and the row lightly tinted; ``at`` as ``YYYY-MM-DD HH:MM UTC``; numbers
        compact; no index; text HTML-escaped and wrapping within a 100 %-wide table. An
        empty frame gives a one-cell "No findings" table.

    Examples
    --------
    >>> from evilent_nb.frames import typed_frame
    >>> html = findings_table(typed_frame([], "findings")).to_html()
    >>> "No findings" in html
    True
    """
    frame = typed_frame(findings, "findings")
    if len(frame) == 0:
        empty = pd.DataFrame({"findings": ["No findings"]})
        styler = empty.style.hide(axis="index").hide(axis="columns").set_table_styles(_FINDINGS_CSS)
        styler = styler.set_properties(
            **{"background-color": SEVERITY_COLORS["OK"][2], "color": "#1b5e20", "text-align": "left",
               "font-weight": "bold"}
        )
        return styler.set_caption(caption) if caption else styler

    display = frame.copy()
    for col in ("value", "threshold"):
        display[col] = display[col].astype(object)
    display["at"] = display["at"].astype(object)

    def _row_style(row: pd.Series) -> list[str]:
        strong, text, tint = SEVERITY_COLORS.get(str(row["severity"]), ("#ffffff", "#000", "#fff"))
        return [
            f"background-color: {strong}; color: {text}; font-weight: bold; text-align: center"
            if col == "severity"
            else f"background-color: {tint}"
            for col in row.index
        ]

    styler = display.style.apply(_row_style, axis=1)
    styler = styler.format(na_rep="", escape="html")
    styler = styler.format(_compact, subset=["value", "threshold"], na_rep="")
    styler = styler.format(lambda v: _fmt_utc(v).replace(" UTC", "\u00a0UTC"), subset=["at"], na_rep="")
    styler = styler.hide(axis="index").set_table_styles(_FINDINGS_CSS)
    styler = styler.set_properties(subset=["value", "threshold"], **{"text-align": "right"})
    # Short columns never break mid-word; the message and the resource take the rest.
    styler = styler.set_properties(
        subset=["severity", "check", "service", "value", "threshold", "playbook"],
        **{"white-space": "nowrap", "text-align": "left"},
    )
    # The time may wrap between date and time (never inside either): the table must fit the page.
    styler = styler.set_properties(subset=["at"], **{"text-align": "left", "min-width": "6.5em"})
    styler = styler.set_properties(subset=["value", "threshold"], **{"text-align": "right"})
    # Notebook CSS right-aligns cells: text columns are set left explicitly.
    styler = styler.set_properties(
        subset=["resource"], **{"overflow-wrap": "anywhere", "max-width": "18em", "text-align": "left"}
    )
    styler = styler.set_properties(subset=["message"], **{"min-width": "16em", "text-align": "left"})
    if caption:
        styler = styler.set_caption(caption)
    return styler


def _cell(value: Any) -> Any:
    """One cell of :func:`table`: times in UTC, numbers compact, containers joined."""
    if isinstance(value, pd.Timestamp | datetime):
        if pd.isna(value):
            return ""
        ts = _utc(value)
        return ts.strftime("%Y-%m-%d %H:%M:%S UTC" if ts.second or ts.microsecond else "%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        return _compact(value)
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value


def table(
    frame: pd.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    empty: str = "Nothing to show",
    pre: Iterable[str] = (),
    max_rows: int | None = 200,
    caption: str | None = None,
    usd: Iterable[str] = (),
    percent: Iterable[str] = (),
) -> Styler:
    """Any frame as a readable report table: nothing truncated, nothing overflowing.

    Parameters
    ----------
    frame
        The frame to show.
    columns
        Columns to show, in order (default: all).
    empty
        The one-cell text shown for an empty frame.
    pre
        Columns shown preformatted (stack traces, log lines): whitespace kept, wrapping.
    max_rows
        Show at most this many rows (a note under the table says how many were left out).
    caption
        An optional caption.
    usd
        Columns of money: shown with two decimals (``1,234.50``), right-aligned.
    percent
        Columns already in percent (``12.5`` = 12.5 %): shown as ``12.5 %``, right-aligned.

    Returns
    -------
    pandas.io.formats.style.Styler
        Left-aligned, no index, 100 % wide, long text wrapping; times as ``YYYY-MM-DD HH:MM
        UTC``; numbers compact; lists joined; booleans yes/no; HTML escaped.

    Examples
    --------
    >>> html = table(pd.DataFrame({"a": [1234567.0], "b": [["x", "y"]]})).to_html()
    >>> "1,234,567" in html and "x, y" in html
    True
    """
    cols = list(columns) if columns is not None else list(frame.columns)
    shown = frame[cols] if len(frame.columns) else frame
    if len(shown) == 0:
        # One left-aligned line, no header: an empty section reads as a statement.
        styler = pd.DataFrame({"": [empty]}).style.hide(axis="index").hide(axis="columns")
        styler = styler.set_table_styles(_FINDINGS_CSS).set_properties(
            **{"text-align": "left", "font-style": "italic", "color": "#444444", "background-color": "#f7f7f7"}
        )
        return styler.set_caption(caption) if caption and caption != empty else styler
    left_out = 0
    if max_rows is not None and len(shown) > max_rows:
        left_out = len(shown) - max_rows
        shown = shown.head(max_rows)
    display = shown.astype(object).map(_cell)
    money = [c for c in usd if c in shown.columns]
    pct = [c for c in percent if c in shown.columns]
    for c in money:
        display[c] = [_money(v) for v in shown[c]]
    for c in pct:
        display[c] = [_percent(v) for v in shown[c]]
    styler = display.style.format(na_rep="", escape="html").hide(axis="index")
    styler = styler.set_table_styles(_FINDINGS_CSS).set_properties(**{"text-align": "left"})
    if money or pct:
        styler = styler.set_properties(subset=money + pct, **{"text-align": "right", "white-space": "nowrap"})
        # Their headers too, so a number sits under its column's name.
        styler = styler.set_table_styles(
            {c: [{"selector": "th", "props": "text-align: right"}] for c in money + pct}, overwrite=False)
    pre_cols = [c for c in pre if c in display.columns]
    if pre_cols:
        styler = styler.set_properties(
            subset=pre_cols,
            **{"white-space": "pre-wrap", "font-family": "monospace", "font-size": "0.85em", "min-width": "24em"},
        )
    if caption:
        # A table's caption explains it: plain text, not a bold title.
        styler = styler.set_table_styles(
            [{"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: normal;"
              " color: #333; padding: 4px 0;"}], overwrite=False)
    notes = [caption] if caption else []
    if left_out:
        notes.append(f"{left_out} more rows not shown")
        if not caption:
            # Alone, the note belongs under the rows it continues, not above the table.
            styler = styler.set_table_styles(
                [{"selector": "caption", "props": "caption-side: bottom; text-align: left; font-style: italic;"
                  " font-weight: normal; color: #555; padding: 4px 0;"}], overwrite=False)
    return styler.set_caption(" · ".join(notes)) if notes else styler


def _money(value: Any) -> str:
    if value is None or value is pd.NA or pd.isna(value):
        return ""
    return f"{float(value):,.2f}"


def _percent(value: Any) -> str:
    if value is None or value is pd.NA or pd.isna(value):
        return ""
    return f"{float(value):,.1f} %"


def _window_text(window: Any) -> str:
    if window is None:
        return ""
    if isinstance(window, str):
        return window
    start = getattr(window, "start", None)
    end = getattr(window, "end", None)
    if start is None and isinstance(window, Sequence | tuple) and len(window) == 2:
        start, end = window
    if isinstance(window, Mapping):
        start, end = window.get("start"), window.get("end")
    if start is None or end is None:
        return str(window)
    return f"{_fmt_utc(start)[:-4]} → {_fmt_utc(end)}"


def _counts(counts: Any) -> dict[str, int]:
    if counts is None:
        return {}
    if isinstance(counts, pd.DataFrame):
        series = counts["severity"].astype(str).value_counts() if len(counts) else pd.Series()
        return {k: int(v) for k, v in series.items()}
    if isinstance(counts, pd.Series):
        return {str(k): int(v) for k, v in counts.items()}
    return {str(k): int(v) for k, v in dict(counts).items()}


# What a status means, from the runbook's severity table, for the banner's second line.
_STATUS_MEANING = {
    "P0": "critical: a service is down",
    "P1": "high: critical functionality affected",
    "P2": "medium: degraded functionality",
    "P3": "low: minor issues only, nothing urgent",
    "OK": "nothing needs attention",
    "ERROR": "the report failed; see its notebook",
}


def status_banner(
    status: str,
    *,
    report: str,
    window: Any = None,
    counts: Mapping[str, int] | pd.DataFrame | None = None,
    generated_at: datetime | None = None,
    headline: str | None = None,
) -> str:
    """An HTML banner for the top of a report: the status and the findings by severity.

    Parameters
    ----------
    status
        ``"P0"``..``"P3"``, ``"OK"`` or ``"ERROR"`` (from :func:`evilent_nb.rules.status_of`).
    report
        The report's name, e.g. ``"health"``.
    window
        A :class:`~evilent_nb.timeframe.Window`, a ``(start, end)`` pair, a
        ``{"start", "end"}`` dict or a string.
    counts
        Findings per severity (``{"P1": 2, "P3": 5}``) or the findings frame itself.
    generated_at
        When the report ran (shown when given).
    headline
        The verdict in words (e.g. the incident's "product: the service is down (...)"):
        shown after the status instead of the counts, which move to the second line.

    Returns
    -------
    str
        A self-contained ``<div>`` (inline styles); show it with
        ``IPython.display.HTML(status_banner(...))``.

    Examples
    --------
    >>> "OK — no findings" in status_banner("OK", report="health", counts={})
    True
    """
    status = str(status).upper()
    strong, text, _ = SEVERITY_COLORS.get(status, SEVERITY_COLORS["ERROR"])
    per_sev = _counts(counts)
    total = sum(per_sev.values())
    breakdown = ", ".join(f"{per_sev[s]} {s}" for s in _SEVERITIES if per_sev.get(s))
    if total == 0:
        count_text = "no findings"
    else:
        noun = "finding" if total == 1 else "findings"
        count_text = f"{total} {noun}" + (f" ({breakdown})" if breakdown else "")
    details = [html.escape(_STATUS_MEANING.get(status, ""))] if status in _STATUS_MEANING else []
    if headline:
        headline = f"{status} — {headline}"
        details.append(html.escape(count_text))
    else:
        headline = f"{status} — {count_text}"
    details.append(f"{html.escape(str(report))} report")
    win = _window_text(window)
    if win:
        details.append(html.escape(win))
    if generated_at is not None:
        details.append(f"generated {html.escape(_fmt_utc(generated_at))}")
    return (
        f'<div class="evilent-status evilent-status-{html.escape(status.lower())}" '
        f'style="background:{strong};color:{text};padding:10px 16px;border-radius:6px;'
        f'margin:4px 0 12px 0;font-family:sans-serif;">'
        f'<div style="font-size:1.35em;font-weight:bold;">{html.escape(headline)}</div>'
        f'<div style="font-size:0.95em;opacity:0.9;">{" · ".join(details)}</div>'
        f"</div>"
    )


def usage_table(usage: Mapping[str, Any]) -> pd.DataFrame:
    """The report's API usage (``ctx.usage``) as a small table: one row per operation.

    Returns
    -------
    pandas.DataFrame
        Columns ``operation, calls``, then a ``total`` row; ``attrs["estimated_cost_usd"]``.

    Examples
    --------
    >>> usage_table({"calls": {"ce.GetCostAndUsage": 1}, "estimated_cost_usd": 0.01})
                operation  calls
    0  ce.GetCostAndUsage      1
    1               total      1
    """
    calls = dict((usage or {}).get("calls") or {})
    rows = [{"operation": op, "calls": int(n)} for op, n in sorted(calls.items())]
    rows.append({"operation": "total", "calls": int(sum(calls.values()))})
    frame = pd.DataFrame(rows, columns=["operation", "calls"])
    frame.attrs["estimated_cost_usd"] = float((usage or {}).get("estimated_cost_usd") or 0.0)
    return frame


def forecast_table(forecast: Mapping[str, Any], *, budget_usd: float) -> pd.DataFrame:
    """Month to date, the daily run-rate and the month-end forecast against the budget.

    Parameters
    ----------
    forecast
        :func:`evilent_nb.cost.run_rate_forecast`'s dict.
    budget_usd
        The monthly budget.

    Returns
    -------
    pandas.DataFrame
        Columns ``measure, usd, share_of_budget`` (share in percent).
    """
    rows = [
        ("month to date", forecast.get("month_to_date")),
        ("daily run-rate (last 7 complete days)", forecast.get("daily_run_rate")),
        ("forecast to month end", forecast.get("forecast")),
        ("monthly budget", budget_usd),
    ]
    frame = pd.DataFrame(
        [{"measure": m, "usd": round(float(v), 2) if v is not None else np.nan} for m, v in rows]
    )
    frame["share_of_budget"] = (frame["usd"] / budget_usd * 100).round(1) if budget_usd else np.nan
    return frame


def plan_summary(data: Any) -> pd.DataFrame:
    """One row per maintenance plan: how many writes are planned and what happened to them.

    Parameters
    ----------
    data
        :class:`evilent_nb.reports.MaintenanceData` (its ``*_result`` frames, each with
        ``applied`` and ``status`` columns).

    Returns
    -------
    pandas.DataFrame
        Columns ``plan, planned, applied, errors, mode`` (mode: "dry run" or "applied").
    """
    plans = [
        ("log retention", data.retention_result),
        ("delete stale log streams", data.stale_result),
        ("create/update runbook alarms", data.alarm_result),
    ]
    rows = []
    for name, result in plans:
        status = result["status"].astype(str) if "status" in result else pd.Series(dtype=str)
        rows.append({
            "plan": name,
            "planned": len(result),
            "applied": int(result["applied"].sum()) if "applied" in result else 0,
            "errors": int(status.str.startswith("error").sum()),
            "mode": "applied" if data.applied else "dry run (-p apply true to execute)",
        })
    return pd.DataFrame(rows, columns=["plan", "planned", "applied", "errors", "mode"])
