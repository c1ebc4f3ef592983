"""Moving dashboards between installations: an export file, and its import.

The export file is JSON: ``{"format": "warehouse-dashboard", "format_version": 1, "id",
"version", "title", "owner", "visibility", "shared_with", "document"}`` with sorted keys,
so exporting the same version twice gives the same bytes. Import validates the document,
reports references to metrics and recipes this warehouse does not know as warnings (the
dashboard is still imported: the data may come later), and is idempotent by id + version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.dashboards.checks import reference
from warehouse.dashboards.definition import Dashboard, DashboardError, parse
from warehouse.dashboards.store import VISIBILITIES, document_text

if TYPE_CHECKING:
    from warehouse.dashboards.store import Dashboards

FORMAT = "warehouse-dashboard"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 2_000_000


@dataclass
class ImportResult:
    """What an import did: ``created``, ``updated`` (a newer version added) or
    ``unchanged`` (that version was already here, identical); and the warnings."""

    id: str
    version: int
    status: str
    warnings: list[str] = field(default_factory=list)


def export_dashboard(store: Dashboards, dashboard_id: str, path=None) -> dict:
    """The export of ``dashboard_id`` (current version); written to ``path`` if given."""
    stored = store.get(dashboard_id)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": stored.id,
               "version": stored.version, "title": stored.title, "owner": stored.owner,
               "visibility": stored.visibility, "shared_with": list(stored.shared_with),
               "document": stored.document.to_json()}
    if path is not None:
        Path(path).write_text(export_text(payload), encoding="utf-8")
    return payload


def export_text(payload: dict) -> str:
    """The bytes of an export file (sorted keys: the same version exports identically)."""
    return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def read_export(source) -> dict:
    """An export file from a path, JSON text or a dict, with its envelope checked."""
    if isinstance(source, dict):
        payload = source
    else:
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip()
                                        .startswith("{")):
            path = Path(source)
            if path.stat().st_size > MAX_FILE_BYTES:
                raise DashboardError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a "
                                     f"dashboard export")
            source = path.read_text(encoding="utf-8")
        try:
            payload = json.loads(source)
        except json.JSONDecodeError as exc:
            raise DashboardError(f"dashboard export: not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise DashboardError("dashboard export: expected a JSON object")
    if payload.get("format") != FORMAT:
        raise DashboardError(f"field 'format': expected {FORMAT!r}, got "
                             f"{payload.get('format')!r}")
    if payload.get("format_version") != FORMAT_VERSION:
        raise DashboardError(f"field 'format_version': this warehouse reads version "
                             f"{FORMAT_VERSION}, got {payload.get('format_version')!r}")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 10**6:
        raise DashboardError(f"field 'version': expected a whole number >= 1, got {version!r}")
    if payload.get("visibility", "private") not in VISIBILITIES:
        raise DashboardError(f"field 'visibility': unknown visibility "
                             f"{payload.get('visibility')!r}")
    shared = payload.get("shared_with", [])
    if not isinstance(shared, list) or not all(isinstance(s, str) for s in shared):
        raise DashboardError("field 'shared_with': expected a list of names")
    document = payload.get("document")
    if not isinstance(document, dict):
        raise DashboardError("field 'document': expected the dashboard document (an object)")
    if document.get("id") != payload.get("id"):
        raise DashboardError(f"field 'id': the envelope says {payload.get('id')!r} but the "
                             f"document is {document.get('id')!r}")
    return payload


def unknown_references(wh, dashboard: Dashboard) -> list[str]:
    """Warnings for metrics and recipes the dashboard names that this warehouse lacks."""
    metrics: dict[str, list[str]] = {}
    recipes: dict[str, list[str]] = {}
    for panel in dashboard.panels:
        query = panel.query.model_dump()
        for key, bucket in (("metric", metrics), ("recipe", recipes)):
            value = query.get(key)
            if isinstance(value, str) and reference(value) is None:
                bucket.setdefault(value, []).append(f"panel {panel.id!r} field 'query.{key}'")
        for side in ("a", "b"):
            value = (query.get(side) or {}).get("recipe")
            if isinstance(value, str) and reference(value) is None:
                recipes.setdefault(value, []).append(f"panel {panel.id!r} field "
                                                     f"'query.{side}.recipe'")
    for var in dashboard.variables:
        if var.type == "recipe":
            for value in [var.default, *(var.options or [])]:
                if isinstance(value, str):
                    recipes.setdefault(value, []).append(f"variable {var.name!r}")
    warnings = []
    for what, names, sql, column in (
            ("metric", metrics, "SELECT DISTINCT metric FROM series", "metric"),
            ("recipe", recipes, "SELECT recipe FROM recipes", "recipe")):
        if not names:
            continue
        known = set(wh.sql(sql)[column])
        for name in sorted(set(names) - known):
            warnings.append(f"{', '.join(names[name])}: unknown {what} {name!r} (no data for "
                            f"it here yet)")
    return warnings


def import_dashboard(wh, store: Dashboards, source, *, author: str | None = None
                     ) -> ImportResult:
    """Import an export file. Re-importing the same id + version changes nothing; a newer
    version is added to the history; a different document under a version already here, or
    a version older than the current one that is not here, is refused."""
    payload = read_export(source)
    dashboard = parse(payload["document"])
    version = payload["version"]
    warnings = unknown_references(wh, dashboard)
    if not store.exists(dashboard.id):
        store.create(dashboard, owner=payload.get("owner"),
                     visibility=payload.get("visibility", "private"),
                     shared_with=payload.get("shared_with", []), author=author, version=version)
        return ImportResult(dashboard.id, version, "created", warnings)
    current = store.get(dashboard.id)
    try:
        here = store.get(dashboard.id, version)
    except DashboardError:
        here = None
    if here is not None:
        if document_text(here.document) == document_text(dashboard):
            return ImportResult(dashboard.id, version, "unchanged", warnings)
        raise DashboardError(f"dashboard {dashboard.id!r} version {version} already exists "
                             f"here with a different document; export it from here first or "
                             f"import under another id")
    if version < current.version:
        raise DashboardError(f"dashboard {dashboard.id!r}: the file has version {version}, "
                             f"older than the current {current.version} here")
    store.update(dashboard.id, dashboard, author=author, version=version,
                 expected_version=current.version)
    return ImportResult(dashboard.id, version, "updated", warnings)


__all__ = ["FORMAT", "ImportResult", "export_dashboard", "export_text", "import_dashboard",
           "read_export", "unknown_references"]
