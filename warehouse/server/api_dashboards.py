"""Dashboard routes (``/api/v1/dashboards``): the functions of ``wh.dashboards`` over HTTP —
list, get, history, create, update, edit, restore, share, delete (docs/dashboards.md); the
rendering and export routes are in :mod:`.api_dashboard_render`, under the same permissions.

Who may do what (docs/server.md): the token's scope first (read for reading and rendering,
write for any change), then the dashboard's own permissions — it is readable by its owner,
an admin, everyone when public, and when shared the users and ``role:NAME`` it names;
writable by its owner, an admin, and an editor it is shared with; only its owner or an admin
may change its sharing or delete it. A dashboard the caller may not read answers 404, the
same as one that does not exist, so private dashboards do not reveal that they exist.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from warehouse.dashboards import builder
from warehouse.dashboards.store import MAX_SHARED, StoredDashboard
from warehouse.server.api_read import no_nul
from warehouse.server.auth import Principal, require
from warehouse.server.deps import TABLE_RESPONSES, table_response, warehouse
from warehouse.server.object_routes import Refusal, answers_problems, author_of

router = APIRouter(tags=["dashboards"], dependencies=[Depends(no_nul)])
READER, WRITER = Depends(require("read")), Depends(require("write"))
Visibility = Literal["private", "shared", "public"]
DASHBOARD_ID = Path(..., max_length=100, description="a stored dashboard's id (or a "
                                                     "built-in's name where rendering)")


# -- permissions ----------------------------------------------------------------------------
def is_admin(principal: Principal) -> bool:
    return principal.role == "admin"


def readable(wh, dashboard_id: str, principal: Principal,
             version: int | None = None) -> StoredDashboard:
    """The stored dashboard if the caller may read it; 404 otherwise (missing or private)."""
    if not wh.dashboards.exists(dashboard_id):
        raise Refusal(404, f"no dashboard {dashboard_id!r}", "unknown-dashboard")
    stored = wh.dashboards.get(dashboard_id, version)
    if not stored.readable_by(principal.name, principal.role):
        raise Refusal(404, f"no dashboard {dashboard_id!r} you may read", "unknown-dashboard")
    return stored


def writable(wh, dashboard_id: str, principal: Principal) -> StoredDashboard:
    stored = readable(wh, dashboard_id, principal)
    if not stored.writable_by(principal.name, principal.role):
        raise Refusal(403, f"{principal.name!r} may read dashboard {dashboard_id!r} but not "
                           f"edit it (its owner, an admin, or an editor it is shared with may)",
                      "403")
    return stored


def owned(wh, dashboard_id: str, principal: Principal) -> StoredDashboard:
    stored = readable(wh, dashboard_id, principal)
    if not (is_admin(principal) or stored.owner == principal.name):
        raise Refusal(403, f"only the owner ({stored.owner!r}) or an admin may change the "
                           f"sharing of dashboard {dashboard_id!r} or delete it", "403")
    return stored


def stored_json(stored: StoredDashboard) -> dict:
    """A stored dashboard as the API answers it (the client rebuilds a StoredDashboard)."""
    return {"id": stored.id, "title": stored.title, "owner": stored.owner,
            "visibility": stored.visibility, "shared_with": list(stored.shared_with),
            "version": stored.version, "created_at": stored.created_at.isoformat(),
            "updated_at": stored.updated_at.isoformat(), "document": stored.document.to_json()}


# -- reading --------------------------------------------------------------------------------
@router.get("/dashboards", summary="Stored dashboards the caller may read",
            responses=TABLE_RESPONSES)
@answers_problems
def list_dashboards(request: Request, principal: Principal = READER,
                    user: str | None = Query(None, max_length=200,
                                             description="admin only: what this user may read"),
                    role: Literal["viewer", "editor", "admin"] | None = Query(
                        None, description="admin only: with user, that user's role")):
    """id, title, owner, visibility, shared_with, version, created_at, updated_at."""
    if (user or role) and not is_admin(principal):
        raise Refusal(403, "only an admin may list dashboards as another user sees them", "403")
    if not is_admin(principal):
        user, role = principal.name, principal.role
    return table_response(request, warehouse(request).dashboards.list(user=user, role=role))


@router.get("/dashboard-templates", summary="The built-in dashboard templates",
            dependencies=[READER])
def list_templates() -> list[dict]:
    """Each built-in: id, title, description, panels, variables (names)."""
    from warehouse.dashboards import templates

    return [{"id": t.id, "title": t.title, "description": t.description,
             "panels": len(t.panels), "variables": [v.name for v in t.variables]}
            for t in templates()]


@router.get("/dashboards/{dashboard_id}", summary="A stored dashboard and its document")
@answers_problems
def get_dashboard(request: Request, dashboard_id: str = DASHBOARD_ID, principal: Principal = READER,
                  version: int | None = Query(None, ge=1, le=10**6,
                                              description="an older version")):
    """The dashboard at ``version`` (default its current one)."""
    return stored_json(readable(warehouse(request), dashboard_id, principal, version))


@router.get("/dashboards/{dashboard_id}/history", summary="Every saved version",
            responses=TABLE_RESPONSES)
@answers_problems
def dashboard_history(request: Request, dashboard_id: str = DASHBOARD_ID,
                      principal: Principal = READER):
    """version, author, created_at, title, panels — oldest first."""
    wh = warehouse(request)
    readable(wh, dashboard_id, principal)
    return table_response(request, wh.dashboards.history(dashboard_id))


# -- writing --------------------------------------------------------------------------------
class NewDashboard(BaseModel):
    """A new dashboard: from ``document``, from the built-in ``template``, or empty (``id``
    and ``title``)."""

    document: dict | None = Field(None, description="a dashboard document (docs/dashboards.md)")
    template: str | None = Field(None, max_length=200, description="a built-in's name")
    id: str | None = Field(None, max_length=100, description="the new dashboard's id")
    title: str | None = Field(None, max_length=200)
    visibility: Visibility = "private"
    shared_with: list[str] = Field(default_factory=list, max_length=MAX_SHARED)
    owner: str | None = Field(None, max_length=200, description="admin only (default: caller)")
    author: str | None = Field(None, max_length=200, description="admin only (default: caller)")
    version: int = Field(1, ge=1, le=10**6, description="its first version number")


@router.post("/dashboards", summary="Create a dashboard", status_code=201)
@answers_problems
def create_dashboard(request: Request, body: NewDashboard, principal: Principal = WRITER):
    """From a document, a built-in template, or empty; the caller owns it."""
    if body.owner and body.owner != principal.name and not is_admin(principal):
        raise Refusal(403, "field 'owner': only an admin may create a dashboard for someone "
                           "else", "403")
    if body.document is not None and body.template is not None:
        raise Refusal(422, "give a document or a template, not both", "dashboard",
                      errors=[{"row": None, "field": "template",
                               "message": "not together with document"}])
    store = warehouse(request).dashboards
    options = {"owner": body.owner or principal.name, "visibility": body.visibility,
               "shared_with": body.shared_with, "author": author_of(principal, body.author),
               "version": body.version}
    if body.template is not None:
        stored = store.create_from_template(body.template, dashboard_id=body.id,
                                            title=body.title, **options)
    elif body.document is not None:
        document = {**body.document, **{k: v for k, v in (("id", body.id),
                                                          ("title", body.title)) if v}}
        stored = store.create(document, **options)
    else:
        if not body.id or not body.title:
            raise Refusal(422, "an empty dashboard needs an id and a title", "dashboard",
                          errors=[{"row": None, "field": "id" if not body.id else "title",
                                   "message": "required for an empty dashboard"}])
        stored = store.create(builder.empty(body.id, body.title), **options)
    return stored_json(stored)


class Update(BaseModel):
    """The whole new document; ``expected_version``: refuse (409) if someone saved since."""

    document: dict
    expected_version: int | None = Field(None, ge=1, le=10**6)
    version: int | None = Field(None, ge=1, le=10**6,
                                description="the number to save under (default current + 1)")
    author: str | None = Field(None, max_length=200, description="admin only")


def _save(wh, dashboard_id: str, save, expected: int | None):
    """Run ``save`` (a store call); a version conflict is a 409 naming the current one."""
    from warehouse.dashboards import DashboardError

    try:
        return save()
    except DashboardError:
        current = wh.dashboards.get(dashboard_id).version
        if expected is not None and current != expected:
            raise Refusal(409, f"dashboard {dashboard_id!r} was changed by someone else since "
                               f"version {expected}; it is now at version {current}: reload "
                               f"and apply the edit again", "dashboard-conflict",
                          current_version=current) from None
        raise


@router.put("/dashboards/{dashboard_id}", summary="Save a new version of a dashboard")
@answers_problems
def update_dashboard(request: Request, body: Update, dashboard_id: str = DASHBOARD_ID,
                     principal: Principal = WRITER):
    """The document becomes the next version (its id must stay the same)."""
    wh = warehouse(request)
    writable(wh, dashboard_id, principal)
    author = author_of(principal, body.author)
    return stored_json(_save(wh, dashboard_id, lambda: wh.dashboards.update(
        dashboard_id, body.document, author=author, expected_version=body.expected_version,
        version=body.version),
        body.expected_version))


class Operation(BaseModel):
    """One builder step: add_panel (panel), replace_panel (panel_id, panel), move_panel
    (panel_id and any of x, y, w, h), remove_panel (panel_id), retitle (title[, description])."""

    op: Literal["add_panel", "replace_panel", "move_panel", "remove_panel", "retitle"]
    panel: dict | None = None
    panel_id: str | None = Field(None, max_length=100)
    x: int | None = None
    y: int | None = None
    w: int | None = None
    h: int | None = None
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)


class Edit(BaseModel):
    """Builder steps applied in order to the current (or ``expected_version``) document."""

    operations: list[Operation] = Field(..., min_length=1, max_length=100)
    expected_version: int | None = Field(None, ge=1, le=10**6)
    author: str | None = Field(None, max_length=200, description="admin only")


def apply_operation(document, step: Operation, index: int):
    """The document after one builder step (a 422 naming the missing field)."""
    needs = {"add_panel": ("panel",), "replace_panel": ("panel_id", "panel"),
             "move_panel": ("panel_id",), "remove_panel": ("panel_id",),
             "retitle": ("title",)}[step.op]
    for name in needs:
        if getattr(step, name) is None:
            raise Refusal(422, f"operations[{index}] ({step.op}) needs {name}", "dashboard",
                          errors=[{"row": index, "field": f"operations.{index}.{name}",
                                   "message": f"required for {step.op}"}])
    if step.op == "add_panel":
        return builder.add_panel(document, step.panel)
    if step.op == "replace_panel":
        return builder.replace_panel(document, step.panel_id, step.panel)
    if step.op == "move_panel":
        return builder.move_panel(document, step.panel_id, x=step.x, y=step.y, w=step.w,
                                  h=step.h)
    if step.op == "remove_panel":
        return builder.remove_panel(document, step.panel_id)
    return builder.retitle(document, step.title, step.description)


@router.post("/dashboards/{dashboard_id}/edit", summary="Apply builder steps as a new version")
@answers_problems
def edit_dashboard(request: Request, body: Edit, dashboard_id: str = DASHBOARD_ID,
                   principal: Principal = WRITER):
    """add/replace/move/remove panels, retitle: one new version for all the steps."""
    wh = warehouse(request)
    current = writable(wh, dashboard_id, principal)
    expected = body.expected_version or current.version
    if expected != current.version:
        raise Refusal(409, f"dashboard {dashboard_id!r} is at version {current.version}, not "
                           f"{expected}: reload and apply the edit again", "dashboard-conflict",
                      current_version=current.version)
    document = current.document
    for index, step in enumerate(body.operations):
        document = apply_operation(document, step, index)
    author = author_of(principal, body.author)
    return stored_json(_save(wh, dashboard_id, lambda: wh.dashboards.update(
        dashboard_id, document, author=author, expected_version=expected), expected))


class Restore(BaseModel):
    version: int = Field(..., ge=1, le=10**6, description="the version to save again")
    author: str | None = Field(None, max_length=200, description="admin only")


@router.post("/dashboards/{dashboard_id}/restore", summary="Save an old version as the newest")
@answers_problems
def restore_dashboard(request: Request, body: Restore, dashboard_id: str = DASHBOARD_ID,
                      principal: Principal = WRITER):
    """The old document again as a new version (history is kept)."""
    wh = warehouse(request)
    writable(wh, dashboard_id, principal)
    return stored_json(wh.dashboards.restore(dashboard_id, body.version,
                                             author=author_of(principal, body.author)))


class Sharing(BaseModel):
    """Fields left out stay as they are."""

    visibility: Visibility | None = None
    shared_with: list[str] | None = Field(None, max_length=MAX_SHARED,
                                          description="user names and role:NAME")
    owner: str | None = Field(None, max_length=200, description="give it to another user")


@router.put("/dashboards/{dashboard_id}/sharing", summary="Change who may see a dashboard")
@answers_problems
def share_dashboard(request: Request, body: Sharing, dashboard_id: str = DASHBOARD_ID,
                    principal: Principal = WRITER):
    """Visibility (private, shared, public), who it is shared with, its owner."""
    wh = warehouse(request)
    owned(wh, dashboard_id, principal)
    return stored_json(wh.dashboards.share(dashboard_id, visibility=body.visibility,
                                           shared_with=body.shared_with, owner=body.owner))


@router.delete("/dashboards/{dashboard_id}", summary="Delete a dashboard and its history")
@answers_problems
def delete_dashboard(request: Request, dashboard_id: str = DASHBOARD_ID,
                     principal: Principal = WRITER):
    """Only its owner or an admin."""
    wh = warehouse(request)
    owned(wh, dashboard_id, principal)
    wh.dashboards.delete(dashboard_id)
    return {"id": dashboard_id, "deleted": True}


__all__ = ["DASHBOARD_ID", "READER", "WRITER", "apply_operation", "is_admin", "owned",
           "readable", "router", "stored_json", "writable"]
