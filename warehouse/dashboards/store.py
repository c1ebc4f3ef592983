"""Dashboards stored in the warehouse (migration 0008): create, get, update, delete, list,
history, restore, sharing. ``wh.dashboards`` is a :class:`Dashboards` over one warehouse.

Every save writes a new row of ``dashboard_versions`` (the validated document as JSON
text) and moves ``dashboards.current_version`` only if nobody else moved it meanwhile, so
two concurrent edits never silently overwrite each other: the later one gets a
:class:`~warehouse.dashboards.definition.DashboardError` and can retry on the new version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import pandas as pd
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from warehouse.backends.base import Backend
from warehouse.dashboards.definition import Dashboard, DashboardError, parse

if TYPE_CHECKING:
    from warehouse.dashboards.render import RenderedDashboard

VISIBILITIES = ("private", "shared", "public")
MAX_SHARED = 200


class HasDatabase(Protocol):
    """What the dashboards store needs of the warehouse it is handed."""

    engine: Engine
    backend: Backend


@dataclass(frozen=True)
class StoredDashboard:
    """A dashboard as stored: who may see it, its version and its document."""

    id: str
    title: str
    owner: str | None
    visibility: str
    shared_with: tuple[str, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    document: Dashboard

    def readable_by(self, user: str | None, role: str | None = None) -> bool:
        """Whether ``user`` (with ``role``) may read it: public, the owner, an admin, or
        named in ``shared_with`` (a user name, or ``role:viewer|editor|admin``)."""
        if self.visibility == "public" or role == "admin":
            return True
        if user is not None and user == self.owner:
            return True
        if self.visibility != "shared":
            return False
        return (user is not None and user in self.shared_with) or (
            role is not None and f"role:{role}" in self.shared_with)

    def writable_by(self, user: str | None, role: str | None = None) -> bool:
        """Whether ``user`` may edit it: the owner or an admin; an editor it is shared with."""
        if role == "admin" or (user is not None and user == self.owner):
            return True
        return role == "editor" and self.visibility == "shared" and self.readable_by(user, role)


def _run(conn: Connection, backend: Backend, name: str, params: dict):
    return conn.execute(text(backend.sql(f"dashboards/{name}")), params)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value) -> datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            ).to_pydatetime()


def _sharing(visibility: str, shared_with) -> tuple[str, list[str]]:
    if visibility not in VISIBILITIES:
        raise DashboardError(f"field 'visibility': unknown visibility {visibility!r}; "
                             f"expected one of {', '.join(VISIBILITIES)}")
    names = [str(n) for n in (shared_with or ())]
    if len(names) > MAX_SHARED or any(not n or len(n) > 200 for n in names):
        raise DashboardError(f"field 'shared_with': at most {MAX_SHARED} non-empty names of "
                             f"up to 200 characters")
    return visibility, sorted(set(names))


def document_text(document: Dashboard) -> str:
    """The stored (and exported) JSON text of a document: canonical key order."""
    return json.dumps(document.to_json(), sort_keys=True, separators=(",", ":"))


class Dashboards:
    """``wh.dashboards``: the builder's functions over one warehouse (the CLI and the web
    UI call these)."""

    def __init__(self, wh: HasDatabase):
        self._wh = wh

    # -- reading --------------------------------------------------------------------------
    def get(self, dashboard_id: str, version: int | None = None) -> StoredDashboard:
        """The dashboard (at ``version``, default its current one)."""
        with self._wh.engine.connect() as conn:
            return self._get(conn, dashboard_id, version)

    def _get(self, conn: Connection, dashboard_id: str, version: int | None) -> StoredDashboard:
        row = _run(conn, self._wh.backend, "dashboard_get", {"id": dashboard_id}).mappings().first()
        if row is None:
            raise DashboardError(f"no dashboard {dashboard_id!r} (see `warehouse dashboards "
                                 f"list`)")
        wanted = row["current_version"] if version is None else int(version)
        saved = _run(conn, self._wh.backend, "version_get",
                     {"id": dashboard_id, "version": wanted}).mappings().first()
        if saved is None:
            raise DashboardError(f"dashboard {dashboard_id!r} has no version {wanted} "
                                 f"(current: {row['current_version']})")
        return StoredDashboard(
            row["id"], row["title"], row["owner"], row["visibility"],
            tuple(json.loads(row["shared_with"] or "[]")), int(wanted),
            _aware(row["created_at"]), _aware(row["updated_at"]), parse(saved["document"]))

    def exists(self, dashboard_id: str) -> bool:
        """Whether a dashboard with this id is stored."""
        with self._wh.engine.connect() as conn:
            return _run(conn, self._wh.backend, "dashboard_get",
                        {"id": dashboard_id}).first() is not None

    def list(self, *, user: str | None = None, role: str | None = None) -> pd.DataFrame:
        """Stored dashboards: id, title, owner, visibility, shared_with, version, created_at,
        updated_at; with ``user``/``role``, only those that user may read."""
        with self._wh.engine.connect() as conn:
            rows = _run(conn, self._wh.backend, "dashboards_list", {}).mappings().all()
        columns = ["id", "title", "owner", "visibility", "shared_with", "version",
                   "created_at", "updated_at"]
        out = []
        for row in rows:
            shared = tuple(json.loads(row["shared_with"] or "[]"))
            if user is not None or role is not None:
                probe = StoredDashboard(row["id"], row["title"], row["owner"], row["visibility"],
                                        shared, 0, _now(), _now(), None)  # type: ignore[arg-type]
                if not probe.readable_by(user, role):
                    continue
            out.append([row["id"], row["title"], row["owner"], row["visibility"],
                        ",".join(shared), int(row["current_version"]),
                        _aware(row["created_at"]), _aware(row["updated_at"])])
        return pd.DataFrame(out, columns=columns)

    def history(self, dashboard_id: str) -> pd.DataFrame:
        """Every saved version, oldest first: version, author, created_at, title, panels."""
        self.get(dashboard_id)  # a clear error for an unknown id
        with self._wh.engine.connect() as conn:
            rows = _run(conn, self._wh.backend, "versions_list",
                        {"id": dashboard_id}).mappings().all()
        out = []
        for row in rows:
            document = json.loads(row["document"])
            out.append([int(row["version"]), row["author"], _aware(row["created_at"]),
                        document.get("title"), len(document.get("panels") or [])])
        return pd.DataFrame(out, columns=["version", "author", "created_at", "title", "panels"])

    # -- writing --------------------------------------------------------------------------
    def create(self, document, *, owner: str | None = None, visibility: str = "private",
               shared_with=(), author: str | None = None, version: int = 1) -> StoredDashboard:
        """Store a new dashboard (a document, validated) at ``version`` (1 unless imported).
        Its id must be free."""
        dashboard = parse(document)
        visibility, shared = _sharing(visibility, shared_with)
        now = _now()
        try:
            with self._wh.engine.begin() as conn:
                if _run(conn, self._wh.backend, "dashboard_get",
                        {"id": dashboard.id}).first() is not None:
                    raise _taken(dashboard.id)
                _run(conn, self._wh.backend, "dashboard_insert", {
                    "id": dashboard.id, "title": dashboard.title, "owner": owner,
                    "visibility": visibility, "shared_with": json.dumps(shared),
                    "version": version, "now": now})
                _run(conn, self._wh.backend, "version_insert", {
                    "id": dashboard.id, "version": version, "document": document_text(dashboard),
                    "author": author or owner, "now": now})
        except IntegrityError as exc:  # a concurrent create of the same id won the race
            raise _taken(dashboard.id) from exc
        return self.get(dashboard.id)

    def create_from_template(self, name: str, *, dashboard_id: str | None = None,
                             title: str | None = None, **options) -> StoredDashboard:
        """A new dashboard copied from the built-in ``name`` (its own id and title)."""
        from warehouse.dashboards.templates import template

        document = template(name).to_json()
        if dashboard_id:
            document["id"] = dashboard_id
        if title:
            document["title"] = title
        return self.create(document, **options)

    def update(self, dashboard_id: str, document, *, author: str | None = None,
               expected_version: int | None = None, version: int | None = None
               ) -> StoredDashboard:
        """Save ``document`` as the next version of ``dashboard_id`` (its id must match).

        ``expected_version``: refuse if the dashboard moved past it (someone else saved).
        ``version``: the number to save under (import); default current + 1."""
        dashboard = parse(document)
        if dashboard.id != dashboard_id:
            raise DashboardError(f"field 'id': the document is {dashboard.id!r}, not "
                                 f"{dashboard_id!r} (ids do not change; create a copy)")
        try:
            with self._wh.engine.begin() as conn:
                current = self._get(conn, dashboard_id, None)
                if expected_version is not None and current.version != expected_version:
                    raise _conflict(dashboard_id, expected_version, current.version)
                new = current.version + 1 if version is None else int(version)
                if new <= current.version:
                    raise DashboardError(f"dashboard {dashboard_id!r}: version {new} is not "
                                         f"after the current {current.version}")
                now = _now()
                _run(conn, self._wh.backend, "version_insert", {
                    "id": dashboard_id, "version": new, "document": document_text(dashboard),
                    "author": author, "now": now})
                moved = _run(conn, self._wh.backend, "dashboard_set_version", {
                    "id": dashboard_id, "title": dashboard.title, "version": new,
                    "expected": current.version, "now": now}).rowcount
                if moved != 1:
                    raise _conflict(dashboard_id, current.version, None)
        except IntegrityError as exc:  # a concurrent save took that version number
            raise _conflict(dashboard_id, expected_version, None) from exc
        return self.get(dashboard_id)

    def edit(self, dashboard_id: str, change, *, author: str | None = None) -> StoredDashboard:
        """Apply ``change`` (a function Dashboard -> Dashboard, e.g. from
        :mod:`warehouse.dashboards.builder`) to the current version and save the result."""
        current = self.get(dashboard_id)
        return self.update(dashboard_id, change(current.document), author=author,
                           expected_version=current.version)

    def restore(self, dashboard_id: str, version: int, *, author: str | None = None
                ) -> StoredDashboard:
        """Save old ``version`` again as the newest version (history is kept)."""
        old = self.get(dashboard_id, version)
        return self.update(dashboard_id, old.document, author=author)

    def share(self, dashboard_id: str, *, visibility: str | None = None, shared_with=None,
              owner: str | None = None) -> StoredDashboard:
        """Change visibility (private|shared|public), who it is shared with (user names and
        ``role:NAME``) or its owner; the document's history is not touched."""
        current = self.get(dashboard_id)
        visibility, shared = _sharing(visibility or current.visibility,
                                      current.shared_with if shared_with is None else shared_with)
        with self._wh.engine.begin() as conn:
            _run(conn, self._wh.backend, "dashboard_set_sharing", {
                "id": dashboard_id, "owner": owner if owner is not None else current.owner,
                "visibility": visibility, "shared_with": json.dumps(shared), "now": _now()})
        return self.get(dashboard_id)

    def delete(self, dashboard_id: str) -> None:
        """Remove a dashboard and its whole history."""
        with self._wh.engine.begin() as conn:
            if _run(conn, self._wh.backend, "dashboard_get", {"id": dashboard_id}).first() is None:
                raise DashboardError(f"no dashboard {dashboard_id!r}")
            _run(conn, self._wh.backend, "versions_delete", {"id": dashboard_id})
            _run(conn, self._wh.backend, "dashboard_delete", {"id": dashboard_id})

    # -- rendering and sharing between installations ---------------------------------------
    def render(self, dashboard, variables: dict | None = None, **options) -> RenderedDashboard:
        """Render a stored dashboard (by id), a built-in (by name) or a document."""
        from warehouse.dashboards.render import render

        return render(self._wh, self.resolve(dashboard), variables, **options)

    def resolve(self, dashboard) -> Dashboard:
        """A Dashboard from a stored id, a built-in template name or a document."""
        return resolve(self, dashboard)

    def export(self, dashboard_id: str, path=None) -> dict:
        """The dashboard as an export file (written to ``path`` when given)."""
        from warehouse.dashboards.sharing import export_dashboard

        return export_dashboard(self, dashboard_id, path)

    def import_(self, source, *, author: str | None = None):
        """Import an export file (path, JSON text or dict); see
        :func:`warehouse.dashboards.sharing.import_dashboard`."""
        from warehouse.dashboards.sharing import import_dashboard

        return import_dashboard(self._wh, self, source, author=author)


def resolve(dashboards, dashboard) -> Dashboard:
    """A Dashboard from a stored id (``dashboards``: this store or the remote client's), a
    built-in template name or a document."""
    if isinstance(dashboard, str):
        from warehouse.dashboards.templates import BUILT_IN, template

        if dashboards.exists(dashboard):
            return dashboards.get(dashboard).document
        if dashboard in BUILT_IN:
            return template(dashboard)
        raise DashboardError(f"no dashboard {dashboard!r} stored and no built-in of that "
                             f"name (built-ins: {', '.join(BUILT_IN)})")
    return parse(dashboard)


def _taken(dashboard_id: str) -> DashboardError:
    return DashboardError(f"a dashboard {dashboard_id!r} already exists (update it, or give "
                          f"the new one another id)")


def _conflict(dashboard_id: str, expected, found) -> DashboardError:
    now = f"; it is now at version {found}" if found is not None else ""
    return DashboardError(f"dashboard {dashboard_id!r} was changed by someone else since "
                          f"version {expected}{now}: reload and apply the edit again")


__all__ = ["VISIBILITIES", "Dashboards", "StoredDashboard", "document_text"]
