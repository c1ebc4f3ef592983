"""The data of the Dashboards and Alerts pages: built-in templates and stored dashboards
(rendered with the URL's variables), alert rules and their current instances."""

from __future__ import annotations

import json

import pandas as pd
from fastapi import HTTPException

from warehouse.server.pages.loaders import time_window
from warehouse.server.pages.render import plain


def dashboards_data(wh, params, principal) -> dict:
    """The built-in templates and the stored dashboards this caller may read."""
    try:
        from warehouse.dashboards import templates
    except ImportError as exc:  # the dashboards area is not installed
        return {"available": False, "reason": str(exc), "tables": {}, "subscribe": {}}
    built_in = pd.DataFrame([{"id": t.id, "title": t.title, "description": t.description}
                             for t in templates()])
    stored = wh.dashboards.list(user=principal.name, role=principal.role)
    return {"available": True, "tables": {"built_in": built_in, "stored": stored},
            "subscribe": {}}


def dashboard_data(wh, params, principal, dashboard_id: str) -> dict:
    """One dashboard (stored, if the caller may read it, or built-in) rendered with the
    variables in the URL; the page's window fills its start/end variables."""
    from warehouse.dashboards import BUILT_IN, DashboardError, template

    store = wh.dashboards
    if store.exists(dashboard_id):
        stored = store.get(dashboard_id)
        if not stored.readable_by(principal.name, principal.role):
            raise HTTPException(404, f"no dashboard {dashboard_id!r} you may read")
        document = stored.document
    elif dashboard_id in BUILT_IN:
        document = template(dashboard_id)
    else:
        raise HTTPException(404, f"no dashboard {dashboard_id!r}")
    window = time_window(params)
    variables = {v.name: params[v.name] for v in document.variables if params.get(v.name)}
    names = {v.name for v in document.variables}
    for name in ("start", "end"):
        if name in names:
            variables.setdefault(name, window[name].isoformat())
    panels, tables, problem = [], {}, None
    try:
        rendered = store.render(document, variables).panels
    except (DashboardError, ValueError) as exc:  # e.g. a required variable not given yet
        rendered, problem = [], str(exc)
    for panel in rendered:
        if panel.frame is not None:
            tables[panel.id] = panel.frame
        panels.append({"id": panel.id, "title": panel.title, "type": panel.type,
                       "grid": panel.grid, "error": panel.error, "value": plain(panel.value),
                       "figure": json.loads(json.dumps(panel.figure, default=str))
                       if panel.figure else None})
    inputs = [{"name": v.name, "label": v.label or v.name, "value": variables.get(v.name, "")}
              for v in document.variables if v.name not in ("start", "end")]
    title = document.title
    for name, value in variables.items():
        title = title.replace("${" + name + "}", str(value))
    return {"window": window, "dashboard": {"id": dashboard_id, "title": title,
                                            "description": document.description},
            "variables": inputs, "panels": panels, "tables": tables, "problem": problem,
            "subscribe": {"kinds": ["runs", "points"]}}


def alerts_data(wh, params) -> dict:
    """Alert rules and their current (firing/pending) instances, if the alerts area is
    installed; else an 'available: False' state saying why."""
    try:
        from warehouse.alerts import store
    except ImportError as exc:
        return {"available": False, "reason": str(exc), "tables": {}, "subscribe": {}}
    rules = pd.DataFrame([{"name": r.name, "kind": r.kind} for r in store.load_rules(wh)],
                         columns=["name", "kind"])
    columns = ["rule", "state", "value", "labels", "active_at", "fired_at"]
    instances = pd.DataFrame(
        [{"rule": i.rule_name, "state": i.state, "value": i.value,
          "labels": json.dumps(i.labels, default=str, sort_keys=True),
          "active_at": i.active_at, "fired_at": i.fired_at}
         for i in store.load_instances(wh) if i.state != "inactive"], columns=columns)
    return {"available": True, "tables": {"rules": rules, "instances": instances},
            "subscribe": {}}
