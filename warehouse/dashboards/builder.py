"""Builder operations on a dashboard document: each returns a new, validated Dashboard
(the document given is not changed). Used through ``wh.dashboards.edit(id, change)``:

>>> wh.dashboards.edit("ops", lambda d: add_panel(d, panel_json))
"""

from __future__ import annotations

from warehouse.dashboards.definition import Dashboard, DashboardError, parse


def empty(dashboard_id: str, title: str, *, description: str | None = None,
          time_range: bool = True) -> Dashboard:
    """A dashboard with no panels; with ``time_range``, the variables start and end."""
    variables = ([{"name": "start", "type": "time", "default": "now-7d"},
                  {"name": "end", "type": "time", "default": "now"}] if time_range else [])
    return parse({"id": dashboard_id, "title": title, "description": description,
                  "variables": variables, "panels": []})


def _with(dashboard: Dashboard, **changes) -> Dashboard:
    document = dashboard.to_json()
    document.update(changes)
    return parse(document)


def add_panel(dashboard: Dashboard, panel: dict) -> Dashboard:
    """Add ``panel`` (JSON of one panel); placed below the others unless it has a grid."""
    panel = dict(panel)
    if "grid" not in panel:
        bottom = max((p.grid.y + p.grid.h for p in dashboard.panels), default=0)
        panel["grid"] = {"x": 0, "y": bottom, "w": 12, "h": 8}
    return _with(dashboard, panels=[*dashboard.to_json()["panels"], panel])


def replace_panel(dashboard: Dashboard, panel_id: str, panel: dict) -> Dashboard:
    """Replace the panel ``panel_id`` with ``panel`` (keeping its place if none is given)."""
    old = dashboard.panel(panel_id).model_dump(mode="json")
    new = dict(panel)
    new.setdefault("grid", old["grid"])
    return _with(dashboard, panels=[new if p["id"] == panel_id else p
                                    for p in dashboard.to_json()["panels"]])


def move_panel(dashboard: Dashboard, panel_id: str, *, x: int | None = None,
               y: int | None = None, w: int | None = None, h: int | None = None) -> Dashboard:
    """Move or resize a panel on the grid."""
    dashboard.panel(panel_id)
    panels = dashboard.to_json()["panels"]
    for panel in panels:
        if panel["id"] == panel_id:
            for key, value in (("x", x), ("y", y), ("w", w), ("h", h)):
                if value is not None:
                    panel["grid"][key] = value
    return _with(dashboard, panels=panels)


def remove_panel(dashboard: Dashboard, panel_id: str) -> Dashboard:
    """Remove the panel ``panel_id``."""
    dashboard.panel(panel_id)
    return _with(dashboard, panels=[p for p in dashboard.to_json()["panels"]
                                    if p["id"] != panel_id])


def retitle(dashboard: Dashboard, title: str, description: str | None = None) -> Dashboard:
    """A new title (and description)."""
    if not title:
        raise DashboardError("field 'title': a dashboard needs a title")
    changes = {"title": title}
    if description is not None:
        changes["description"] = description
    return _with(dashboard, **changes)


__all__ = ["add_panel", "empty", "move_panel", "remove_panel", "replace_panel", "retitle"]
