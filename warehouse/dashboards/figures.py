"""Plotly figure JSON (plain dicts, what Plotly.js draws) for each panel type.

Plain dicts rather than ``plotly.graph_objects``: the same JSON, without validating every
trace on the render path. Columns a panel names that its frame lacks are a
:class:`~warehouse.dashboards.definition.DashboardError` naming the field.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pandas as pd

from warehouse.dashboards.definition import DashboardError, Panel

MAX_TABLE_ROWS = 500


def plain(values) -> list:
    """JSON-ready list: times as ISO-8601, NaN/NaT as null, numpy scalars as Python."""
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        aware = getattr(series.dt, "tz", None) is not None
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series
        text = np.datetime_as_string(naive.to_numpy().astype("datetime64[us]"), unit="us")
        suffix = "+00:00" if aware else ""
        return [None if missing else f"{t}{suffix}"
                for t, missing in zip(text.tolist(), series.isna().tolist(), strict=True)]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series) \
            and not pd.api.types.is_object_dtype(series):
        if pd.api.types.is_integer_dtype(series):  # exact, also past 2**53
            return [None if v is pd.NA else int(v) for v in series.astype(object).tolist()]
        numbers = series.to_numpy(dtype=float, na_value=np.nan).tolist()
        return [v if math.isfinite(v) else None for v in numbers]
    out = []
    for value in series.tolist():
        if isinstance(value, float) and not math.isfinite(value):
            out.append(None)
        elif isinstance(value, (pd.Timestamp, np.datetime64)):
            out.append(pd.Timestamp(value).isoformat())
        elif value is None or isinstance(value, (int, float, bool, str)):
            out.append(value)
        elif value is pd.NA or value is pd.NaT:
            out.append(None)
        elif isinstance(value, decimal.Decimal):
            out.append(float(value))
        else:
            out.append(str(value))
    return out


def _need(frame: pd.DataFrame, panel: Panel, field: str, column: str | None) -> str:
    if column is None or column not in frame.columns:
        raise DashboardError(f"panel {panel.id!r} field 'visual.{field}': no column "
                             f"{column!r} in the result (columns: {', '.join(frame.columns)})")
    return column


def _numeric_columns(frame: pd.DataFrame, skip: set[str]) -> list[str]:
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(
        frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]


def figure(panel: Panel, frame: pd.DataFrame, title: str) -> dict:
    """The Plotly figure of ``frame`` drawn as ``panel`` says."""
    layout = {"title": {"text": title}, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
              "template": "plotly_white"}
    if frame.empty:
        layout["annotations"] = [{"text": "no data", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5}]
        return {"data": [], "layout": layout}
    build = {"timeseries": _lines, "bar": _bars, "table": _table, "stat": _stat,
             "heatmap": _heatmap, "gantt": _gantt}[panel.type]
    data, extra = build(panel, frame)
    layout.update(extra)
    return {"data": data, "layout": layout}


def _ys(panel: Panel, frame: pd.DataFrame, x: str) -> list[str]:
    visual = panel.visual
    if visual.y:
        return [_need(frame, panel, "y", y) for y in visual.y]
    skip = {x, visual.series or "", *(visual.band or []), "series_id"}
    ys = ["value"] if "value" in frame.columns else _numeric_columns(frame, skip)
    if not ys:
        raise DashboardError(f"panel {panel.id!r} field 'visual.y': the result has no numeric "
                             f"column to draw")
    return ys


def _groups(panel: Panel, frame: pd.DataFrame):
    series = panel.visual.series
    if series is None and "series" in frame.columns and frame["series"].nunique() > 1:
        series = "series"
    if series is None:
        return [("", frame)]
    _need(frame, panel, "series", series)
    return [(str(key), part) for key, part in frame.groupby(series, sort=True)]


def _lines(panel: Panel, frame: pd.DataFrame):
    x = _need(frame, panel, "x", panel.visual.x or "ts")
    ys = _ys(panel, frame, x)
    data = []
    for name, part in _groups(panel, frame):
        part = part.sort_values(x, kind="stable")
        if panel.visual.band:
            lo, hi = (_need(frame, panel, "band", c) for c in panel.visual.band)
            data.append({"type": "scatter", "mode": "lines", "x": plain(part[x]),
                         "y": plain(part[hi]), "line": {"width": 0}, "showlegend": False,
                         "name": f"{name} {hi}".strip()})
            data.append({"type": "scatter", "mode": "lines", "x": plain(part[x]),
                         "y": plain(part[lo]), "fill": "tonexty", "line": {"width": 0},
                         "name": f"{name} {lo}..{hi}".strip(), "opacity": 0.3})
        for y in ys:
            label = " ".join(p for p in (name, y if len(ys) > 1 or not name else "") if p)
            data.append({"type": "scatter", "mode": "lines+markers" if len(part) < 60
                         else "lines", "name": label or y, "x": plain(part[x]),
                         "y": plain(part[y])})
    return data, {"xaxis": {"title": {"text": x}},
                  "yaxis": {"title": {"text": panel.visual.unit or ""}}}


def _bars(panel: Panel, frame: pd.DataFrame):
    x = _need(frame, panel, "x", panel.visual.x)
    ys = _ys(panel, frame, x)
    horizontal = panel.visual.orientation == "h"
    data = []
    for name, part in _groups(panel, frame):
        for y in ys:
            cat, val = plain(part[x]), plain(part[y])
            data.append({"type": "bar", "name": " ".join(p for p in (name, y) if p),
                         "orientation": panel.visual.orientation,
                         "x": val if horizontal else cat, "y": cat if horizontal else val})
    return data, {"barmode": "stack" if panel.visual.stacked else "group"}


def _table(panel: Panel, frame: pd.DataFrame):
    columns = [_need(frame, panel, "columns", c) for c in panel.visual.columns or frame.columns]
    shown = frame.head(MAX_TABLE_ROWS)
    return [{"type": "table", "header": {"values": [str(c) for c in columns]},
             "cells": {"values": [plain(shown[c]) for c in columns]}}], {}


def stat_value(panel: Panel, frame: pd.DataFrame):
    """The single number a stat panel shows (None for an empty result)."""
    column = _need(frame, panel, "value", panel.visual.value)
    values = frame[column].dropna()
    if values.empty:
        return None
    reduce = panel.visual.reduce
    value = {"last": lambda v: v.iloc[-1], "first": lambda v: v.iloc[0], "sum": np.sum,
             "mean": np.mean, "min": np.min, "max": np.max, "count": len}[reduce](values)
    return value.item() if hasattr(value, "item") else value


def _stat(panel: Panel, frame: pd.DataFrame):
    value = stat_value(panel, frame)
    number = {"valueformat": ",.4~g"}
    if panel.visual.unit:
        number["suffix"] = f" {panel.visual.unit}"
    return [{"type": "indicator", "mode": "number", "value": value, "number": number}], {}


def _heatmap(panel: Panel, frame: pd.DataFrame):
    x = _need(frame, panel, "x", panel.visual.x)
    y = _need(frame, panel, "y", panel.visual.y[0])
    z = _need(frame, panel, "z", panel.visual.z)
    grid = frame.pivot_table(index=y, columns=x, values=z, aggfunc="mean", sort=True)
    return [{"type": "heatmap", "x": plain(grid.columns.to_series()),
             "y": plain(grid.index.to_series()),
             "z": [plain(row) for row in grid.to_numpy()], "colorscale": "Viridis"}], {}


def _gantt(panel: Panel, frame: pd.DataFrame):
    task = _need(frame, panel, "task", panel.visual.task)
    start = _need(frame, panel, "start", panel.visual.start)
    end = _need(frame, panel, "end", panel.visual.end)
    timed = pd.api.types.is_datetime64_any_dtype(frame[start])
    if timed:
        length = (frame[end] - frame[start]) / pd.Timedelta(milliseconds=1)
    else:
        length = frame[end].astype(float) - frame[start].astype(float)
    parts = ([(str(k), p) for k, p in frame.groupby(panel.visual.color, sort=True)]
             if panel.visual.color else [("", frame)])
    data = [{"type": "bar", "orientation": "h", "name": name or "steps", "y": plain(p[task]),
             "x": plain(length[p.index]), "base": plain(p[start])} for name, p in parts]
    xaxis = {"type": "date"} if timed else {"title": {"text": "ms from start"}}
    return data, {"barmode": "overlay", "xaxis": xaxis, "yaxis": {"autorange": "reversed"}}


__all__ = ["figure", "plain", "stat_value"]
