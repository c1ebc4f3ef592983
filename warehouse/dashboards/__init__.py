"""Dashboards as data (docs/dashboards.md): a validated, versioned JSON document — variables
and a grid of panels, each a query and a visualisation — rendered into DataFrames and Plotly
figure JSON, stored with history and sharing (``wh.dashboards``), exported and imported.

Four built-ins ship as documents in ``templates/``: performance-overview,
resource-utilisation, error-analysis, trend-analysis.
"""

from __future__ import annotations

from warehouse.dashboards.definition import (
    Dashboard,
    DashboardError,
    Panel,
    Variable,
    json_schema,
    parse,
)
from warehouse.dashboards.render import PanelResult, RenderedDashboard, render
from warehouse.dashboards.store import Dashboards, StoredDashboard
from warehouse.dashboards.templates import BUILT_IN, template, templates

__all__ = ["BUILT_IN", "Dashboard", "DashboardError", "Dashboards", "Panel", "PanelResult",
           "RenderedDashboard", "StoredDashboard", "Variable", "json_schema", "parse", "render",
           "template", "templates"]
