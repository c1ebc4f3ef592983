"""A rendered dashboard as one self-contained HTML report or one XLSX workbook."""

from __future__ import annotations

import pandas as pd

from warehouse.dashboards.render import RenderedDashboard
from warehouse.export import to_xlsx, write_report

ABOUT_SHEET = "dashboard"


def _variables_text(rendered: RenderedDashboard) -> str:
    shown = []
    for name, value in rendered.variables.items():
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        shown.append(f"{name}={'' if value is None else value}")
    return ", ".join(shown)


def html_report(rendered: RenderedDashboard, path) -> int:
    """Write the dashboard as one HTML file that opens offline; returns its size in bytes."""
    sections = [{"title": p.title, "figure": p.figure, "error": p.error, "grid": p.grid}
                for p in rendered.panels]
    return write_report(path, _title(rendered), sections,
                        description=rendered.dashboard.description,
                        meta=f"{rendered.dashboard.id} · {_variables_text(rendered)}")


def xlsx_report(rendered: RenderedDashboard, path) -> int:
    """Write the dashboard as a workbook: a first sheet describing it, then one sheet per
    panel (its frame, or its error). Returns data rows written."""
    about = pd.DataFrame(
        [{"panel": p.id, "title": p.title, "type": p.type,
          "rows": None if p.frame is None else len(p.frame), "error": p.error}
         for p in rendered.panels])
    sheets = {ABOUT_SHEET: about}
    for panel in rendered.panels:
        sheets[panel.id] = (panel.frame if panel.frame is not None
                            else pd.DataFrame({"error": [panel.error]}))
    return to_xlsx(sheets, path)


def _title(rendered: RenderedDashboard) -> str:
    from warehouse.dashboards.checks import embedded

    return embedded(rendered.dashboard.title, rendered.variables)


__all__ = ["ABOUT_SHEET", "html_report", "xlsx_report"]
