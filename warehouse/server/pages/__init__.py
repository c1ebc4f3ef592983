"""The web dashboard (issue 12; docs/dashboard.md): server-rendered pages whose URL holds their
state (time range, filters), so a link can be shared.

- ``/`` Overview, ``/recipes/{recipe}``, ``/runs/{run_id}``, ``/recipes/{recipe}/steps/{step}``,
  ``/metrics`` explorer, ``/dashboards``, ``/alerts``, ``/login``;
- every page answers ``?format=json`` (its data, used by the live refresh) and
  ``?format=csv|json&table=NAME`` (one of its tables: the export links);
- ``/static/...`` the page scripts and styles, ``/static/plotly.min.js`` from the installed
  ``plotly`` package (no CDN: the dashboard works offline).

Pages read only through the Warehouse's public API and the documented views. They follow
the API's authentication (:func:`warehouse.server.auth.authenticate`): no credentials ->
the login page; every role may read; edit controls are shown only to callers whose scopes
allow them (the API still checks every change).

This module holds the routes; :mod:`.loaders` the data each page reads, :mod:`.render` the
templates, page JSON and exports, :mod:`.dashboards` the Dashboards and Alerts pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from warehouse.errors import WarehouseError
from warehouse.server.auth import Principal, authenticate
from warehouse.server.pages.dashboards import alerts_data, dashboard_data, dashboards_data
from warehouse.server.pages.loaders import (
    RANGES,
    metrics_data,
    overview_data,
    recipe_data,
    run_data,
    step_data,
    time_window,
)
from warehouse.server.pages.memo import memo_of
from warehouse.server.pages.render import (
    BINARY_FORMATS,
    SERVER_DIR,
    PageError,
    export,
    page_json,
    query_string,
    script_json,
    templates,
)

__all__ = ["PageError", "Reader", "page_reader", "router", "static_files", "time_window"]


async def page_reader(request: Request) -> Principal | None:
    """FastAPI dependency of every page: the caller if it may read (403 otherwise). A browser
    without credentials (it asks for HTML and sends no Authorization header) gets None, and
    the page sends it to the login page; any other caller gets the API's 401 problem."""
    try:
        principal = await authenticate(request)
    except HTTPException as exc:
        browser = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and browser and "authorization" not in request.headers:
            return None
        raise
    if "read" not in principal.scopes:
        raise HTTPException(403, f"{principal.name!r} ({principal.role}) lacks the 'read' "
                                 f"scope pages need")
    return principal


page_reader.required_scope = "read"  # read by auth.required_scope (permission tests)
Reader = Annotated[Principal | None, Depends(page_reader)]


async def _page(request: Request, principal: Principal | None, template: str, loader, *args,
                title: str, memo: bool = False) -> Response:
    """Render ``template`` with ``loader(wh, params, *args)`` (or answer its JSON / an
    export). ``memo``: the loader depends on its URL and the data only, so its answer is
    reused until the next change (:mod:`.memo`)."""
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
    params = request.query_params
    fmt = params.get("format")
    context = {"request": request, "title": title, "principal": principal,
               "can_write": "write" in principal.scopes, "can_admin": "admin" in principal.scopes,
               "filters": lambda **c: query_string(request, **c), "ranges": list(RANGES),
               "path": request.url.path}
    try:
        wh = request.app.state.warehouse
        if memo:
            key = (loader.__name__, args, tuple(sorted(
                (k, v) for k, v in params.multi_items() if k not in ("format", "table"))))
            data = await run_in_threadpool(memo_of(request.app).get_or_load, key,
                                           lambda: loader(wh, params, *args))
        else:
            data = await run_in_threadpool(loader, wh, params, *args)
    except (PageError, HTTPException, WarehouseError) as exc:  # e.g. an unknown metric
        status, detail = (exc.status_code, exc.detail) if isinstance(exc, HTTPException) \
            else (400, str(exc))
        if fmt:
            raise HTTPException(status, detail) from None
        context.update(error=detail, data={"tables": {}}, page_data="{}")
        return HTMLResponse(templates.get_template("error.html").render(context),
                            status_code=status)
    try:
        if fmt in ("csv", "json", *BINARY_FORMATS) and params.get("table"):
            return export(data, params["table"], fmt, template.removesuffix(".html"))
        if fmt == "json":
            return Response(json.dumps(page_json(data), default=str),
                            media_type="application/json")
        if fmt:
            raise PageError(f"format must be csv, json, xlsx or parquet, not {fmt!r}")
    except PageError as exc:
        raise HTTPException(400, str(exc)) from None
    context.update(data=data, page_data=script_json(page_json(data)))
    return HTMLResponse(templates.get_template(template).render(context))


def router() -> APIRouter:
    """The dashboard's pages (HTML; excluded from the OpenAPI document)."""
    pages = APIRouter(include_in_schema=False)

    @pages.get("/")
    async def overview(request: Request, principal: Reader):
        return await _page(request, principal, "overview.html", overview_data, title="Overview",
                           memo=True)

    # Recipe and step names may hold '/' (ingest allows it): path parameters, steps first.
    @pages.get("/recipes/{recipe:path}/steps/{step:path}")
    async def step(request: Request, recipe: str, step: str, principal: Reader):
        return await _page(request, principal, "step.html", step_data, recipe, step,
                           title=f"{recipe} / {step}", memo=True)

    @pages.get("/recipes/{recipe:path}")
    async def recipe(request: Request, recipe: str, principal: Reader):
        return await _page(request, principal, "recipe.html", recipe_data, recipe, title=recipe,
                           memo=True)

    @pages.get("/runs/{run_id}")
    async def run(request: Request, run_id: str, principal: Reader):
        return await _page(request, principal, "run.html", run_data, run_id, title=f"Run {run_id[:8]}",
                           memo=True)

    @pages.get("/metrics")
    async def metrics(request: Request, principal: Reader):
        return await _page(request, principal, "metrics.html", metrics_data, title="Metrics",
                           memo=True)

    @pages.get("/dashboards")
    async def dashboards(request: Request, principal: Reader):
        return await _page(request, principal, "dashboards.html", dashboards_data, principal,
                           title="Dashboards")

    @pages.get("/dashboards/{dashboard_id}")
    async def dashboard(request: Request, dashboard_id: str, principal: Reader):
        return await _page(request, principal, "dashboard.html", dashboard_data, principal,
                           dashboard_id, title=dashboard_id)

    @pages.get("/alerts")
    async def alerts(request: Request, principal: Reader):
        return await _page(request, principal, "alerts.html", alerts_data, title="Alerts")

    # Public by design (plain routes, like the API docs page): the login form, Plotly.js.
    pages.add_route("/login", login_page, methods=["GET"], include_in_schema=False)
    pages.add_route("/static/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False)
    return pages


async def login_page(request: Request) -> Response:
    """The login form; it posts to ``/api/v1/auth/login`` and then opens ``next``."""
    target = request.query_params.get("next") or "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        target = "/"  # only this site's pages: no open redirect
    return HTMLResponse(templates.get_template("login.html").render(
        {"request": request, "title": "Log in", "next": target, "principal": None,
         "data": {"tables": {}}, "page_data": "{}", "ranges": []}))


async def plotly_js(request: Request) -> Response:
    """Plotly.js from the installed ``plotly`` package (no CDN: works offline)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def static_files() -> StaticFiles:
    """The page scripts and styles (``/static``)."""
    return StaticFiles(directory=SERVER_DIR / "static")
