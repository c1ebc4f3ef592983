"""Rendering and exporting dashboards over HTTP (``/api/v1/dashboards/...``): every panel's
data and Plotly figure, the rendered data as CSV, JSON, XLSX, Parquet or an HTML report (via
:mod:`warehouse.export`), and the export file that moves a dashboard between installations.
The permissions are those of :mod:`.api_dashboards`: reading renders and exports; a stored
dashboard the caller may not read answers 404; importing over one needs the right to edit it.
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from warehouse.dashboards.render import MAX_PANEL_ROWS
from warehouse.server.api_dashboards import (
    DASHBOARD_ID,
    READER,
    WRITER,
    is_admin,
    readable,
    writable,
)
from warehouse.server.api_read import no_nul
from warehouse.server.auth import Principal
from warehouse.server.deps import split_list, warehouse
from warehouse.server.object_routes import (
    MEDIA_TYPES,
    Refusal,
    answers_problems,
    author_of,
    file_response,
    jsonable,
)

router = APIRouter(tags=["dashboards"], dependencies=[Depends(no_nul)])
#: Rows of each panel a JSON render carries by default (``max_rows`` asks for more).
RENDER_ROWS = 1000


def _document(wh, dashboard_id: str, principal: Principal):
    """A stored dashboard the caller may read, else the built-in of that name."""
    from warehouse.dashboards import BUILT_IN, template

    if wh.dashboards.exists(dashboard_id) or dashboard_id not in BUILT_IN:
        return readable(wh, dashboard_id, principal).document
    return template(dashboard_id)


def _variables(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Refusal(422, f"variables must be a JSON object: {exc}", "request-validation",
                      errors=[{"row": None, "field": "variables", "message": str(exc)}]) from None
    if not isinstance(value, dict):
        raise Refusal(422, "variables must be a JSON object, e.g. {\"recipe\": \"etl\"}",
                      "request-validation",
                      errors=[{"row": None, "field": "variables", "message": "not an object"}])
    return value


def rendered_json(rendered, max_rows: int) -> dict:
    """A render as JSON: ``to_json`` plus the document and each panel's column dtypes (the
    remote client rebuilds typed frames from them)."""
    out = rendered.to_json(max_rows)
    out["document"] = rendered.dashboard.to_json()
    for panel, result in zip(out["panels"], rendered.panels, strict=True):
        if result.frame is not None:
            panel["dtypes"] = {str(c): str(t) for c, t in result.frame.dtypes.items()}
    return jsonable(out)


_VARIABLES = Query(None, max_length=20_000, description='JSON object: {"recipe": "etl"}')
_PANELS = Query(None, max_length=5000, description="comma-separated panel ids (default all)")


@router.get("/dashboards/{dashboard_id}/render",
            summary="Render a stored or built-in dashboard: every panel's data and figure")
@answers_problems
def render_dashboard(request: Request, dashboard_id: str = DASHBOARD_ID, principal: Principal = READER,
                     variables: str | None = _VARIABLES, panels: str | None = _PANELS,
                     max_rows: int = Query(RENDER_ROWS, ge=0, le=MAX_PANEL_ROWS)):
    """Panels render concurrently; a panel that fails carries its ``error``."""
    wh = warehouse(request)
    document = _document(wh, dashboard_id, principal)
    rendered = wh.dashboards.render(document, _variables(variables), panels=split_list(panels))
    return rendered_json(rendered, max_rows)


class RenderDocument(BaseModel):
    """An unsaved document to render (the builder's preview)."""

    document: dict
    variables: dict = Field(default_factory=dict)
    panels: list[str] | None = Field(None, max_length=500)
    max_rows: int = Field(RENDER_ROWS, ge=0, le=MAX_PANEL_ROWS)


@router.post("/dashboards/render", summary="Render an unsaved dashboard document")
@answers_problems
def render_document(request: Request, body: RenderDocument, principal: Principal = WRITER):
    """Needs write scope: evaluating arbitrary documents is the builder's (editors') tool."""
    rendered = warehouse(request).dashboards.render(body.document, body.variables,
                                                    panels=body.panels)
    return rendered_json(rendered, body.max_rows)


@router.get("/dashboards/{dashboard_id}/data",
            summary="Export a rendered dashboard or one panel (CSV, JSON, XLSX, Parquet, HTML)",
            responses={200: {"description": "the file",
                             "content": {t: {} for t in set(MEDIA_TYPES.values())}}})
@answers_problems
def export_data(request: Request, dashboard_id: str = DASHBOARD_ID, principal: Principal = READER,
                format: Literal["csv", "json", "json-split", "xlsx", "parquet", "html"] = Query(
                    ..., description="a whole dashboard: html, xlsx or json; a panel: any"),
                panel: str | None = Query(None, max_length=100, description="one panel's id"),
                variables: str | None = _VARIABLES):
    """One panel's rows in any format; a whole dashboard as an HTML report (opens offline),
    a workbook (a sheet per panel) or JSON (every panel with its figure)."""
    from warehouse import export
    from warehouse.dashboards.reports import html_report, xlsx_report

    wh = warehouse(request)
    document = _document(wh, dashboard_id, principal)
    rendered = wh.dashboards.render(document, _variables(variables),
                                    panels=[panel] if panel else None)
    suffix = {"json-split": "json"}.get(format, format)
    if panel:
        only = rendered.panels[0]
        if only.error:
            raise Refusal(400, f"panel {panel!r}: {only.error}", "panel-error")
        return file_response(lambda path: export.write(only.frame, path, format), format,
                             f"{document.id}.{panel}.{suffix}")
    writers = {"html": html_report, "xlsx": xlsx_report,
               "json": lambda r, path: path.write_text(json.dumps(
                   rendered_json(r, MAX_PANEL_ROWS), ensure_ascii=False), encoding="utf-8")}
    if format not in writers:
        raise Refusal(422, f"a whole dashboard exports as html, xlsx or json; give panel= for "
                           f"{format}", "request-validation",
                      errors=[{"row": None, "field": "format", "message": "needs panel"}])
    return file_response(lambda path: writers[format](rendered, path), format,
                         f"{document.id}.{suffix}")


@router.get("/dashboards/{dashboard_id}/export",
            summary="The dashboard as an export file (to import elsewhere)")
@answers_problems
def export_dashboard(request: Request, dashboard_id: str = DASHBOARD_ID, principal: Principal = READER):
    """``{"format": "warehouse-dashboard", "format_version", "id", "version", ...}``."""
    wh = warehouse(request)
    readable(wh, dashboard_id, principal)
    return wh.dashboards.export(dashboard_id)


@router.post("/dashboards/import", summary="Import a dashboard export file")
@answers_problems
def import_dashboard(request: Request, payload: dict, principal: Principal = WRITER,
                     author: str | None = Query(None, max_length=200,
                                                description="admin only")):
    """Validated; unknown metrics and recipes come back as ``warnings``; the same id and
    version again is ``unchanged``. A new dashboard is owned by the caller (an admin keeps
    the file's owner); a newer version of one here needs the right to edit it."""
    wh = warehouse(request)
    dashboard_id = payload.get("id")
    if isinstance(dashboard_id, str) and wh.dashboards.exists(dashboard_id):
        writable(wh, dashboard_id, principal)
    elif not is_admin(principal):
        payload = {**payload, "owner": principal.name}
    result = wh.dashboards.import_(payload, author=author_of(principal, author))
    return {"id": result.id, "version": result.version, "status": result.status,
            "warnings": result.warnings}


__all__ = ["RENDER_ROWS", "rendered_json", "router"]
