"""Rendering a dashboard: every panel's query evaluated into a DataFrame and a Plotly
figure, concurrently; a panel that fails carries its error and the others still render."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from warehouse.dashboards.buckets import AUTO, auto_width
from warehouse.dashboards.checks import embedded
from warehouse.dashboards.definition import Dashboard, DashboardError, Panel, parse
from warehouse.dashboards.figures import figure, plain, stat_value
from warehouse.dashboards.queries import evaluate
from warehouse.errors import WarehouseError
from warehouse.timeparse import aware_timestamp, interval_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse

MAX_WORKERS = 4
MAX_TEXT = 200
#: Rows one panel may return (the same cap as analyst SQL): more cannot be drawn usefully
#: and would only load the server; aggregate with every/by or narrow the time range.
MAX_PANEL_ROWS = 1_000_000


@dataclass
class PanelResult:
    """One rendered panel: its frame and figure, or the error that stopped it."""

    id: str
    title: str
    type: str
    grid: dict
    frame: pd.DataFrame | None = None
    figure: dict | None = None
    value: Any = None
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self, max_rows: int = 1000) -> dict:
        """JSON-ready: the figure, the stat value, the first ``max_rows`` rows, the error."""
        out = {"id": self.id, "title": self.title, "type": self.type, "grid": self.grid,
               "figure": self.figure, "value": self.value, "error": self.error,
               "elapsed_ms": round(self.elapsed_ms, 1)}
        if self.frame is not None:
            shown = self.frame.head(max_rows)
            out["columns"] = [str(c) for c in shown.columns]
            out["rows"] = len(self.frame)
            out["data"] = {str(c): plain(shown[c]) for c in shown.columns}
        return out


@dataclass
class RenderedDashboard:
    """A dashboard with the variables it was rendered with and each panel's result."""

    dashboard: Dashboard
    variables: dict
    panels: list[PanelResult] = field(default_factory=list)
    elapsed_ms: float = 0.0

    def panel(self, panel_id: str) -> PanelResult:
        """The result of the panel with this id."""
        for result in self.panels:
            if result.id == panel_id:
                return result
        raise DashboardError(f"dashboard {self.dashboard.id!r} has no panel {panel_id!r}")

    @property
    def errors(self) -> dict[str, str]:
        """Panel id -> error of every panel that failed."""
        return {p.id: p.error for p in self.panels if p.error is not None}

    def frames(self) -> dict[str, pd.DataFrame]:
        """Panel id -> DataFrame of every panel that rendered."""
        return {p.id: p.frame for p in self.panels if p.frame is not None}

    def to_json(self, max_rows: int = 1000) -> dict:
        """JSON-ready form (what the web dashboard and ``--format json`` show)."""
        return {"id": self.dashboard.id, "title": self.dashboard.title,
                "description": self.dashboard.description,
                "variables": {k: plain([v])[0] for k, v in self.variables.items()},
                "elapsed_ms": round(self.elapsed_ms, 1),
                "panels": [p.to_json(max_rows) for p in self.panels]}


def resolve_variables(dashboard: Dashboard, given: dict | None = None) -> dict:
    """Typed values of the dashboard's variables: ``given`` over the defaults.

    Times become aware timestamps ('now-7d' works), numbers floats, intervals are checked
    (``auto`` becomes a width chosen from ``start``..``end``, see buckets.py); an unknown
    name, a missing required value or a value outside ``options`` is a
    :class:`DashboardError` naming the variable."""
    given = dict(given or {})
    unknown = sorted(set(given) - {v.name for v in dashboard.variables})
    if unknown:
        raise DashboardError(f"dashboard {dashboard.id!r} has no variable {unknown[0]!r}; "
                             f"its variables: {', '.join(v.name for v in dashboard.variables)}")
    values = {}
    for var in dashboard.variables:
        raw = given.get(var.name, var.default)
        if raw is None or raw == "":
            if var.required:
                raise DashboardError(f"variable {var.name!r} is required")
            values[var.name] = None
            continue
        try:
            values[var.name] = _typed(var.type, raw, var.name)
        except (ValueError, TypeError) as exc:
            raise DashboardError(f"variable {var.name!r}: {exc}") from None
        if var.options and str(raw) not in var.options:
            raise DashboardError(f"variable {var.name!r}: {raw!r} is not one of "
                                 f"{', '.join(var.options)}")
    for var in dashboard.variables:  # after the loop: the range may be declared later
        if var.type == "interval" and values[var.name] == AUTO:
            values[var.name] = auto_width(values.get("start"), values.get("end"))
    return values


def _typed(kind: str, raw, name: str):
    if kind == "time":
        return aware_timestamp(raw, name)
    if kind == "number":
        return float(raw)
    text = str(raw)
    if len(text) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    if kind == "interval" and text != AUTO:
        interval_us(text)
    return text


def render(wh: Warehouse, dashboard, variables: dict | None = None, *,
           panels: list[str] | None = None, max_workers: int = MAX_WORKERS) -> RenderedDashboard:
    """Evaluate every panel of ``dashboard`` (a :class:`Dashboard` or its JSON) with
    ``variables`` through the public query and analytics APIs.

    Panels run concurrently on a small thread pool; an error in one panel is caught and
    kept on its :class:`PanelResult` (``error``) while the others render. ``panels`` limits
    rendering to those ids."""
    dashboard = dashboard if isinstance(dashboard, Dashboard) else parse(dashboard)
    values = resolve_variables(dashboard, variables)
    chosen = dashboard.panels if panels is None else [dashboard.panel(p) for p in panels]
    began = time.perf_counter()
    workers = max(1, min(max_workers, len(chosen)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="panel") as pool:
        results = list(pool.map(lambda panel: render_panel(wh, panel, values), chosen))
    return RenderedDashboard(dashboard, values, results,
                             (time.perf_counter() - began) * 1000)


def render_panel(wh: Warehouse, panel: Panel, values: dict) -> PanelResult:
    """One panel: its frame and figure, or its error as one line."""
    began = time.perf_counter()
    title = embedded(panel.title, values)
    result = PanelResult(panel.id, title, panel.type, panel.grid.model_dump())
    try:
        frame = evaluate(wh, panel.query, values).reset_index(drop=True)
        if len(frame) > MAX_PANEL_ROWS:
            raise DashboardError(f"the result has {len(frame):,} rows, more than the "
                                 f"{MAX_PANEL_ROWS:,} a panel shows: aggregate (every, by) or "
                                 f"narrow the time range")
        result.frame = frame
        result.figure = figure(panel, frame, title)
        if panel.type == "stat" and not frame.empty:
            result.value = stat_value(panel, frame)
    except (WarehouseError, ValueError, KeyError, LookupError, TypeError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        result.error = f"{type(exc).__name__}: {message.strip().splitlines()[0] if message else ''}"
    except Exception as exc:  # noqa: BLE001 - one panel's failure must not sink the others
        result.error = f"{type(exc).__name__}: {exc}"
    result.elapsed_ms = (time.perf_counter() - began) * 1000
    return result


__all__ = ["PanelResult", "RenderedDashboard", "render", "render_panel", "resolve_variables"]
