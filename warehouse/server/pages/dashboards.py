"""The data of the Dashboards and Alerts pages: built-in templates and stored dashboards
(rendered with the URL's variables), alert rules and their current instances; and the
dashboard builder's form posts (:func:`builder_router`).

The builder is plain HTML forms (the session's CSRF token in a hidden field, checked by
:func:`warehouse.server.auth.authenticate`) posting to routes that call the same
``wh.dashboards`` functions as the API and the CLI, then send the browser back to the
dashboard (303). A refused change comes back as ``?builder_error=...`` shown on the page;
each edit carries the version it was made on, so a change someone saved meanwhile is refused
instead of overwritten.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlencode

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from warehouse.server.auth import Principal, require
from warehouse.server.pages.loaders import time_window
from warehouse.server.pages.render import plain

#: Query parameters of a dashboard page that are not its variables or window (dropped when
#: the builder sends the browser back).
_NOT_STATE = ("builder_error", "format", "table")


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
            "templates": built_in[["id", "title"]].to_dict(orient="records"),
            "builder_error": params.get("builder_error"), "subscribe": {}}


def dashboard_data(wh, params, principal, dashboard_id: str) -> dict:
    """One dashboard (stored, if the caller may read it, or built-in) rendered with the
    variables in the URL; the page's window fills its start/end variables."""
    from warehouse.dashboards import BUILT_IN, DashboardError, template

    store = wh.dashboards
    stored = None
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
    chosen = {p.id: p.visual.columns for p in document.panels if p.type == "table"}
    for panel in rendered:
        if panel.frame is not None:
            columns = [c for c in chosen.get(panel.id) or [] if c in panel.frame.columns]
            # A table shows (and exports) the columns its visual names, in that order.
            tables[panel.id] = panel.frame[columns] if columns else panel.frame
        panels.append({"id": panel.id, "title": panel.title, "type": panel.type,
                       "grid": panel.grid, "error": panel.error, "value": plain(panel.value),
                       "figure": json.loads(json.dumps(panel.figure, default=str))
                       if panel.figure else None})
    inputs = [{"name": v.name, "label": v.label or v.name, "value": variables.get(v.name, "")}
              for v in document.variables if v.name not in ("start", "end")]
    title = document.title
    for name, value in variables.items():
        title = title.replace("${" + name + "}", str(value))
    for name in names - set(variables):  # not chosen yet: the form below asks for it
        title = title.replace("${" + name + "}", "…")
    return {"window": window, "dashboard": {"id": dashboard_id, "title": title,
                                            "description": document.description},
            "variables": inputs, "panels": panels, "tables": tables, "problem": problem,
            "builder": _builder_state(store, stored, principal, params),
            "subscribe": {"kinds": ["runs", "points"]}}


def _builder_state(store, stored, principal: Principal, params) -> dict:
    """What the page's edit controls need: whether the caller may edit this dashboard (or,
    for a built-in, save a copy), its version and history, and a refused change's error."""
    editable = stored is not None and "write" in principal.scopes and stored.writable_by(
        principal.name, principal.role)
    versions = (store.history(stored.id)["version"].tolist()[::-1]
                if editable else [])
    return {"editable": editable, "stored": stored is not None,
            "can_copy": stored is None and "write" in principal.scopes,
            "version": stored.version if stored is not None else None,
            "versions": [int(v) for v in versions], "panel_types": list(_panel_types()),
            "error": params.get("builder_error"),
            "back": urlencode([(k, v) for k, v in params.multi_items()
                               if k not in _NOT_STATE])}


def _panel_types() -> tuple[str, ...]:
    from warehouse.dashboards.definition import PANEL_TYPES

    return PANEL_TYPES


def alerts_data(wh, params) -> dict:
    """Alert rules and their current (firing/pending) instances, if the alerts area is
    installed; else an 'available: False' state saying why."""
    try:
        from warehouse.alerts import store
    except ImportError as exc:
        return {"available": False, "reason": str(exc), "tables": {}, "subscribe": {}}
    rules = pd.DataFrame(
        [{"name": r.name, "kind": r.kind, "for": r.for_ or "", "interval": r.interval,
          "labels": json.dumps(r.labels, sort_keys=True) if r.labels else "",
          "enabled": "yes" if r.enabled else "no"} for r in store.load_rules(wh)],
        columns=["name", "kind", "for", "interval", "labels", "enabled"])
    columns = ["rule", "state", "value", "labels", "active_at", "fired_at"]
    instances = pd.DataFrame(
        [{"rule": i.rule_name, "state": i.state, "value": i.value,
          "labels": json.dumps(i.labels, default=str, sort_keys=True),
          "active_at": i.active_at, "fired_at": i.fired_at}
         for i in store.load_instances(wh) if i.state != "inactive"], columns=columns)
    silences = pd.DataFrame(
        [{"matchers": " ".join(f"{label}{op}{value!r}" for label, op, value in x.matchers),
          "starts_at": x.starts_at, "ends_at": x.ends_at, "author": x.author,
          "comment": x.comment, "silence_id": x.silence_id}
         for x in store.current_silences(wh, datetime.now(UTC))],
        columns=["matchers", "starts_at", "ends_at", "author", "comment", "silence_id"])
    return {"available": True,
            "tables": {"rules": rules, "instances": instances, "silences": silences},
            "subscribe": {}}


# -- the builder's form posts -----------------------------------------------------------------
def _back(dashboard_id: str | None, form, error: str | None = None) -> RedirectResponse:
    """303 to the dashboard (or the list) with the page's own query, plus the error."""
    target = "/dashboards" + (f"/{quote(dashboard_id, safe='')}" if dashboard_id else "")
    query = [(k, v) for k, v in parse_qsl(str(form.get("back") or ""))
             if k not in _NOT_STATE]
    if error:
        query.append(("builder_error", error.splitlines()[0][:500]))
    return RedirectResponse(target + (f"?{urlencode(query)}" if query else ""), status_code=303)


def _text(form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _create(wh, form, principal: Principal) -> RedirectResponse:
    from warehouse.dashboards import DashboardError, builder

    template_name, dashboard_id, title = (_text(form, n) for n in ("template", "id", "title"))
    try:
        if template_name:
            stored = wh.dashboards.create_from_template(
                template_name, dashboard_id=dashboard_id or None, title=title or None,
                owner=principal.name, author=principal.name)
        else:
            if not dashboard_id or not title:
                raise DashboardError("an empty dashboard needs an id and a title")
            stored = wh.dashboards.create(builder.empty(dashboard_id, title),
                                          owner=principal.name, author=principal.name)
    except DashboardError as exc:
        return _back(None, form, str(exc))
    return _back(stored.id, {})


def _edit(wh, dashboard_id: str, form, principal: Principal, change) -> RedirectResponse:
    """Apply ``change`` (Dashboard -> Dashboard) to the version the form was made on."""
    from warehouse.dashboards import DashboardError

    store = wh.dashboards
    stored = store.get(dashboard_id) if store.exists(dashboard_id) else None
    if stored is None or not stored.readable_by(principal.name, principal.role):
        raise HTTPException(404, f"no dashboard {dashboard_id!r} you may read")
    if not stored.writable_by(principal.name, principal.role):
        raise HTTPException(403, f"{principal.name!r} may not edit dashboard {dashboard_id!r}")
    try:
        expected = int(_text(form, "version") or stored.version)
        store.update(dashboard_id, change(stored), author=principal.name,
                     expected_version=expected)
    except (DashboardError, ValueError) as exc:
        return _back(dashboard_id, form, str(exc))
    return _back(dashboard_id, form)


def _new_panel(form) -> dict:
    """The panel of the add-panel form: id, title, type, the query and (optional, for the
    types that need it: bar, stat, heatmap, gantt) the visual, both as JSON."""
    panel = {"id": _text(form, "panel_id"), "title": _text(form, "title"),
             "type": _text(form, "type")}
    for name in ("query", "visual"):
        text = _text(form, name)
        if not text and name == "visual":
            continue
        try:
            panel[name] = json.loads(text or "null")
        except ValueError as exc:
            raise ValueError(f"field '{name}': not JSON ({exc})") from None
    return panel


def moved(document, panel_id: str, step: int):
    """``document`` with the panel ``panel_id`` swapped with its neighbour ``step`` places
    away (-1 up, +1 down) in the page's order, the two trading their grid cells too."""
    from warehouse.dashboards.definition import parse

    panels = document.to_json()["panels"]
    index = next((i for i, p in enumerate(panels) if p["id"] == panel_id), None)
    if index is None:
        document.panel(panel_id)  # the DashboardError naming the panel
    other = index + step
    if not 0 <= other < len(panels):
        return document
    first, second = panels[index], panels[other]
    first["grid"], second["grid"] = second["grid"], first["grid"]
    panels[index], panels[other] = second, first
    return parse({**document.to_json(), "panels": panels})


def builder_router() -> APIRouter:
    """The builder's form posts (editors; excluded from the OpenAPI document)."""
    from warehouse.dashboards import builder

    router = APIRouter(include_in_schema=False)
    writer = Depends(require("write"))

    async def form_of(request: Request):
        return await request.form()  # already parsed (and cached) by the CSRF check

    @router.post("/dashboards")
    async def create(request: Request, principal: Principal = writer):
        return await run_in_threadpool(_create, request.app.state.warehouse,
                                       await form_of(request), principal)

    @router.post("/dashboards/{dashboard_id}/panels")
    async def add_panel(request: Request, dashboard_id: str, principal: Principal = writer):
        form = await form_of(request)
        return await run_in_threadpool(
            _edit, request.app.state.warehouse, dashboard_id, form, principal,
            lambda stored: builder.add_panel(stored.document, _new_panel(form)))

    @router.post("/dashboards/{dashboard_id}/panels/{panel_id}/move")
    async def move_panel(request: Request, dashboard_id: str, panel_id: str,
                         principal: Principal = writer):
        form = await form_of(request)
        step = -1 if _text(form, "direction") == "up" else 1
        return await run_in_threadpool(
            _edit, request.app.state.warehouse, dashboard_id, form, principal,
            lambda stored: moved(stored.document, panel_id, step))

    @router.post("/dashboards/{dashboard_id}/panels/{panel_id}/remove")
    async def remove_panel(request: Request, dashboard_id: str, panel_id: str,
                           principal: Principal = writer):
        return await run_in_threadpool(
            _edit, request.app.state.warehouse, dashboard_id, await form_of(request),
            principal, lambda stored: builder.remove_panel(stored.document, panel_id))

    @router.post("/dashboards/{dashboard_id}/restore")
    async def restore(request: Request, dashboard_id: str, principal: Principal = writer):
        form = await form_of(request)

        def old_version(stored):
            return request.app.state.warehouse.dashboards.get(
                stored.id, int(_text(form, "restore") or 0)).document

        return await run_in_threadpool(_edit, request.app.state.warehouse, dashboard_id,
                                       form, principal, old_version)

    return router
