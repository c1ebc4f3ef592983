"""``wh.dashboards`` and ``wh.alerts`` of a served warehouse: the methods of
:class:`~warehouse.dashboards.Dashboards` and :class:`~warehouse.alerts.AlertManager` over
the HTTP API (``/api/v1/dashboards``, ``/api/v1/alerts``; docs/server.md).

>>> wh = Warehouse("http://127.0.0.1:8000", token="...")
>>> wh.dashboards.create_from_template("performance-overview", dashboard_id="ops")
>>> wh.alerts.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl"})

Refusals come back as the exceptions a direct call raises: DashboardError (an invalid
document, an unknown dashboard, an edit that lost a race) and RuleError naming the field.
Evaluation itself (the change feed, intervals, notifications) runs in the server, so the
AlertManager methods that drive it are not offered here (:data:`ALERTS_SERVER_ONLY`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pandas as pd

from warehouse.alerts.rules import Rule, RuleError, parse_rule
from warehouse.alerts.store import Silence
from warehouse.client.wire import ARROW, arrow_to_frame
from warehouse.dashboards.definition import Dashboard, DashboardError, parse
from warehouse.dashboards.render import PanelResult, RenderedDashboard
from warehouse.dashboards.store import StoredDashboard
from warehouse.errors import TransientError, UnknownNameError

if TYPE_CHECKING:
    from warehouse.client import RemoteWarehouse
    from warehouse.dashboards.sharing import ImportResult

#: AlertManager members that belong to the process that evaluates (the server): driving
#: evaluation, notification and the background thread, and its in-memory state.
ALERTS_SERVER_ONLY = frozenset({"evaluate", "evaluate_all", "evaluate_changes", "evaluate_due",
                                "on_changes", "notify", "start", "stop", "running",
                                "set_notify", "instances", "notifier", "clock", "wh", "lease",
                                "claim", "index"})
#: Problem types of the dashboards routes that a direct call raises as DashboardError.
_DASHBOARD_KINDS = ("dashboard", "unknown-dashboard", "dashboard-conflict")
#: Rows of each panel asked for when rendering: all a panel may have (the frames are the
#: result, as with a direct call; the web page asks the server for fewer).
_ALL_ROWS = 1_000_000


class _Remote:
    """An HTTP caller over the RemoteWarehouse's connection, turning the refusals of these
    routes into the exceptions the local objects raise."""

    def __init__(self, wh: RemoteWarehouse):
        self._wh = wh

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._wh._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"warehouse server at {self._wh.url} unreachable: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _object_error(response) or self._wh._error(response)
        return response

    def _json(self, method: str, path: str, **kwargs):
        return self._call(method, path, **kwargs).json()

    def _frame(self, path: str, **params) -> pd.DataFrame:
        params = {k: v for k, v in params.items() if v is not None}
        return arrow_to_frame(self._call("GET", path, params=params,
                                         headers={"Accept": ARROW}).content)


def _object_error(response: httpx.Response) -> Exception | None:
    """DashboardError or RuleError for the problems these routes answer, else None."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if kind in _DASHBOARD_KINDS:
        return DashboardError(detail, [str(e.get("message")) for e in errors] or None)
    if kind == "alert-rule" and errors:
        return RuleError(body.get("rule"), str(errors[0].get("field")),
                         str(errors[0].get("message")))
    return None


def _time(value) -> datetime | None:
    return None if value is None else pd.Timestamp(value).to_pydatetime()


def _document(document) -> dict:
    return document.to_json() if isinstance(document, Dashboard) else parse(document).to_json()


def _stored(data: dict) -> StoredDashboard:
    return StoredDashboard(data["id"], data["title"], data["owner"], data["visibility"],
                           tuple(data["shared_with"]), int(data["version"]),
                           _time(data["created_at"]), _time(data["updated_at"]),
                           parse(data["document"]))


def _panel_frame(panel: dict) -> pd.DataFrame | None:
    """A rendered panel's rows with the dtypes the server's frame had."""
    if "data" not in panel:
        return None
    frame = pd.DataFrame({c: panel["data"][c] for c in panel["columns"]},
                         columns=panel["columns"])
    for column, dtype in (panel.get("dtypes") or {}).items():
        if column not in frame.columns or dtype == "object":
            continue
        if dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column], utc="UTC" in dtype or "+" in dtype)
        else:
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):  # nulls in an int column: leave it as it came
                pass
    return frame


def _rendered(data: dict) -> RenderedDashboard:
    panels = [PanelResult(p["id"], p["title"], p["type"], p["grid"], frame=_panel_frame(p),
                          figure=p.get("figure"), value=p.get("value"), error=p.get("error"),
                          elapsed_ms=float(p.get("elapsed_ms") or 0.0))
              for p in data["panels"]]
    return RenderedDashboard(parse(data["document"]), dict(data.get("variables") or {}),
                             panels, float(data.get("elapsed_ms") or 0.0))


class RemoteDashboards(_Remote):
    """``wh.dashboards`` over HTTP: the methods of :class:`warehouse.dashboards.Dashboards`.
    The server records the caller as owner and author (an admin may name others)."""

    # -- reading --------------------------------------------------------------------------
    def get(self, dashboard_id: str, version: int | None = None) -> StoredDashboard:
        """The dashboard (at ``version``, default its current one)."""
        params = {"version": version} if version is not None else None
        return _stored(self._json("GET", f"/dashboards/{dashboard_id}", params=params))

    def exists(self, dashboard_id: str) -> bool:
        """Whether a dashboard with this id is stored (and readable by the caller)."""
        try:
            self.get(dashboard_id)
        except DashboardError:
            return False
        return True

    def list(self, *, user: str | None = None, role: str | None = None) -> pd.DataFrame:
        """The dashboards the caller may read (an admin may ask as ``user``/``role``)."""
        return self._frame("/dashboards", user=user, role=role)

    def history(self, dashboard_id: str) -> pd.DataFrame:
        """Every saved version, oldest first: version, author, created_at, title, panels."""
        return self._frame(f"/dashboards/{dashboard_id}/history")

    # -- writing --------------------------------------------------------------------------
    def _create(self, body: dict, owner, visibility, shared_with, author) -> StoredDashboard:
        body.update(visibility=visibility, shared_with=list(shared_with or ()),
                    owner=owner, author=author)
        return _stored(self._json("POST", "/dashboards", json=body))

    def create(self, document, *, owner: str | None = None, visibility: str = "private",
               shared_with=(), author: str | None = None, version: int = 1) -> StoredDashboard:
        """Store a new dashboard (validated here and by the server)."""
        return self._create({"document": _document(document), "version": version}, owner,
                            visibility, shared_with, author)

    def create_from_template(self, name: str, *, dashboard_id: str | None = None,
                             title: str | None = None, owner: str | None = None,
                             visibility: str = "private", shared_with=(),
                             author: str | None = None) -> StoredDashboard:
        """A new dashboard copied from the built-in ``name``."""
        return self._create({"template": name, "id": dashboard_id, "title": title}, owner,
                            visibility, shared_with, author)

    def update(self, dashboard_id: str, document, *, author: str | None = None,
               expected_version: int | None = None, version: int | None = None
               ) -> StoredDashboard:
        """Save ``document`` as the next version; ``expected_version`` guards against a
        concurrent save (DashboardError, as locally)."""
        return _stored(self._json("PUT", f"/dashboards/{dashboard_id}", json={
            "document": _document(document), "author": author,
            "expected_version": expected_version, "version": version}))

    def edit(self, dashboard_id: str, change, *, author: str | None = None) -> StoredDashboard:
        """Apply ``change`` (Dashboard -> Dashboard, e.g. from warehouse.dashboards.builder)
        to the current version here and save the result if nobody saved meanwhile."""
        current = self.get(dashboard_id)
        return self.update(dashboard_id, change(current.document), author=author,
                           expected_version=current.version)

    def restore(self, dashboard_id: str, version: int, *, author: str | None = None
                ) -> StoredDashboard:
        """Save old ``version`` again as the newest version."""
        return _stored(self._json("POST", f"/dashboards/{dashboard_id}/restore",
                                  json={"version": version, "author": author}))

    def share(self, dashboard_id: str, *, visibility: str | None = None, shared_with=None,
              owner: str | None = None) -> StoredDashboard:
        """Change visibility, who it is shared with, or its owner."""
        return _stored(self._json("PUT", f"/dashboards/{dashboard_id}/sharing", json={
            "visibility": visibility, "owner": owner,
            "shared_with": None if shared_with is None else list(shared_with)}))

    def delete(self, dashboard_id: str) -> None:
        """Remove a dashboard and its whole history."""
        self._call("DELETE", f"/dashboards/{dashboard_id}")

    # -- rendering and sharing between installations ---------------------------------------
    def render(self, dashboard, variables: dict | None = None, *,
               panels: list[str] | None = None, max_workers: int | None = None
               ) -> RenderedDashboard:
        """Render on the server a stored dashboard (by id), a built-in (by name) or a
        document (``max_workers`` is the server's to choose)."""
        import json

        if isinstance(dashboard, str):
            params = {"max_rows": _ALL_ROWS, "variables": json.dumps(variables or {},
                                                                     default=str)}
            if panels:
                params["panels"] = ",".join(panels)
            return _rendered(self._json("GET", f"/dashboards/{dashboard}/render",
                                        params=params))
        body = {"document": _document(dashboard), "variables": variables or {},
                "panels": panels, "max_rows": _ALL_ROWS}
        return _rendered(self._json("POST", "/dashboards/render",
                                    content=json.dumps(body, default=str),
                                    headers={"Content-Type": "application/json"}))

    def resolve(self, dashboard) -> Dashboard:
        """A Dashboard from a stored id, a built-in template name or a document."""
        from warehouse.dashboards.store import resolve

        return resolve(self, dashboard)

    def export(self, dashboard_id: str, path=None) -> dict:
        """The dashboard as an export file (written to ``path`` when given)."""
        from warehouse.dashboards.sharing import export_text

        payload = self._json("GET", f"/dashboards/{dashboard_id}/export")
        if path is not None:
            Path(path).write_text(export_text(payload), encoding="utf-8")
        return payload

    def import_(self, source, *, author: str | None = None) -> ImportResult:
        """Import an export file (path, JSON text or dict) into the server."""
        from warehouse.dashboards.sharing import ImportResult, read_export

        params = {"author": author} if author else None
        result = self._json("POST", "/dashboards/import", json=read_export(source),
                            params=params)
        return ImportResult(result["id"], result["version"], result["status"],
                            list(result["warnings"]))


class RemoteAlerts(_Remote):
    """``wh.alerts`` over HTTP: rules, tests, state, silences and history of the server's
    :class:`~warehouse.alerts.AlertManager` (which evaluates and notifies)."""

    @property
    def rules(self) -> dict[str, Rule]:
        """Stored rules by name (read from the server on each access)."""
        return {doc["name"]: parse_rule(doc) for doc in self._json("GET", "/alerts/rules")}

    @property
    def errors(self) -> dict[str, str]:
        """Rule -> the error of its last evaluation in the server."""
        return dict(self._json("GET", "/alerts/errors"))

    def reload(self) -> None:
        """Nothing to do: every call reads the server's current rules and state."""
        return None

    def add_rule(self, rule: Rule | dict, *, check: bool = True) -> Rule:
        """Validate and store a rule (replaces one of the same name)."""
        body = rule.to_dict() if isinstance(rule, Rule) else dict(rule)
        return parse_rule(self._json("POST", "/alerts/rules", json=body,
                                     params={"check": "true" if check else "false"}))

    def check(self, rule: Rule | dict) -> Rule:
        """Validate a rule against the server's data; store nothing."""
        body = rule.to_dict() if isinstance(rule, Rule) else dict(rule)
        return parse_rule(self._json("POST", "/alerts/rules/check", json=body))

    def remove_rule(self, name: str) -> None:
        """Delete a rule and its instances (UnknownNameError if there is none)."""
        self._call("DELETE", f"/alerts/rules/{name}")

    def test(self, rule: Rule | str, now: datetime | None = None) -> pd.DataFrame:
        """What the rule selects now: rule, labels, value, run_url (``attrs['no_data']``)."""
        params = {"now": now.isoformat()} if now is not None else None
        if isinstance(rule, str):
            data = self._json("GET", f"/alerts/rules/{rule}/test", params=params)
        else:
            data = self._json("POST", "/alerts/test", json=rule.to_dict(), params=params)
        frame = pd.DataFrame(data["rows"], columns=["rule", "labels", "value", "run_url"])
        frame.attrs["no_data"] = bool(data["no_data"])
        return frame

    def state(self) -> pd.DataFrame:
        """Current instances: rule, state, labels, value, active_at, fired_at, resolved_at,
        fingerprint."""
        return self._frame("/alerts/instances")

    def add_silence(self, match, *, ends_at: datetime, author: str, comment: str,
                    starts_at: datetime | None = None) -> Silence:
        """Mute matching alerts from ``starts_at`` (default now) until ``ends_at``."""
        from warehouse.alerts.notify import matchers

        texts = [f"{m.label}{m.op}{m.value}" for m in matchers(match)]
        return _silence(self._json("POST", "/alerts/silences", json={
            "matchers": texts, "ends_at": ends_at.isoformat(), "author": author,
            "comment": comment, "starts_at": starts_at.isoformat() if starts_at else None}))

    def silences(self) -> list[Silence]:
        """Silences that have not ended."""
        return [_silence(s) for s in self._json("GET", "/alerts/silences")]

    def expire_silence(self, silence_id: str) -> bool:
        """End a silence now; False if it had already ended or does not exist."""
        try:
            self._call("DELETE", f"/alerts/silences/{silence_id}")
        except UnknownNameError:
            return False
        return True

    def history(self, rule: str | None = None, since: datetime | None = None,
                limit: int = 100) -> pd.DataFrame:
        """State changes, newest first."""
        return self._frame("/alerts/history", rule=rule, limit=limit,
                           since=since.isoformat() if since is not None else None)

    def notifications(self, limit: int = 100) -> pd.DataFrame:
        """Delivery attempts, newest first."""
        return self._frame("/alerts/notifications", limit=limit)

    def __getattr__(self, name: str):
        if name in ALERTS_SERVER_ONLY:
            raise AttributeError(f"wh.alerts.{name} runs where alerts are evaluated: in "
                                 f"`warehouse serve` ({self._wh.url}), not over HTTP")
        raise AttributeError(name)


def _silence(data: dict) -> Silence:
    return Silence(data["silence_id"], tuple(tuple(m) for m in data["matchers"]),
                   _time(data["starts_at"]), _time(data["ends_at"]), data["author"],
                   data["comment"])


__all__ = ["ALERTS_SERVER_ONLY", "RemoteAlerts", "RemoteDashboards"]
