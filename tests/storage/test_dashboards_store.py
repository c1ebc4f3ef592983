"""Stored dashboards on both engines: create, edit with history, restore, sharing,
concurrent edits, delete; export -> import round trip, warnings, idempotent re-import."""

from __future__ import annotations

import json

import pytest

from warehouse import Warehouse
from warehouse.dashboards import DashboardError, builder, template
from warehouse.dashboards.sharing import export_text

PANEL = {"id": "count", "title": "Runs", "type": "stat",
         "query": {"kind": "sql", "sql": "SELECT count(*) AS n FROM runs"},
         "visual": {"value": "n"}}


def test_create_edit_history_restore_delete(wh):
    created = wh.dashboards.create_from_template("error-analysis", dashboard_id="errors",
                                                 owner="ann")
    assert (created.id, created.version, created.owner, created.visibility) == (
        "errors", 1, "ann", "private")
    assert created.document.panels == template("error-analysis").panels

    edited = wh.dashboards.edit("errors", lambda d: builder.remove_panel(d, "retries"),
                                author="bob")
    assert edited.version == 2 and "retries" not in [p.id for p in edited.document.panels]
    added = wh.dashboards.edit("errors", lambda d: builder.add_panel(d, PANEL), author="bob")
    assert added.version == 3 and added.document.panels[-1].id == "count"

    history = wh.dashboards.history("errors")
    assert history["version"].tolist() == [1, 2, 3]
    assert history["author"].tolist() == ["ann", "bob", "bob"]
    assert history["panels"].tolist() == [8, 7, 8]
    assert wh.dashboards.get("errors", version=1).document == created.document

    restored = wh.dashboards.restore("errors", 1, author="ann")
    assert restored.version == 4 and restored.document == created.document
    assert len(wh.dashboards.history("errors")) == 4  # restoring keeps the history

    listed = wh.dashboards.list()
    assert listed["id"].tolist() == ["errors"] and listed["version"].tolist() == [4]
    wh.dashboards.delete("errors")
    assert wh.dashboards.list().empty
    with pytest.raises(DashboardError, match="no dashboard 'errors'"):
        wh.dashboards.get("errors")
    with pytest.raises(DashboardError, match="no dashboard 'errors'"):
        wh.dashboards.delete("errors")


def test_invalid_documents_and_ids_are_refused_and_nothing_is_written(wh):
    document = template("trend-analysis").to_json()
    document["panels"][0]["query"]["agg"] = "p96"
    with pytest.raises(DashboardError, match="panel 'step_durations' field 'query.agg'"):
        wh.dashboards.create(document)
    assert wh.dashboards.list().empty
    wh.dashboards.create(template("trend-analysis"))
    with pytest.raises(DashboardError, match="already exists"):
        wh.dashboards.create(template("trend-analysis"))
    with pytest.raises(DashboardError, match="ids do not change"):
        wh.dashboards.update("trend-analysis", template("error-analysis"))
    with pytest.raises(DashboardError, match="panel 'step_durations'"):
        wh.dashboards.update("trend-analysis", document)
    assert wh.dashboards.get("trend-analysis").version == 1
    with pytest.raises(DashboardError, match="has no version 7"):
        wh.dashboards.get("trend-analysis", version=7)


def test_a_stale_edit_is_refused_not_lost(wh):
    wh.dashboards.create(template("trend-analysis"))
    first = wh.dashboards.get("trend-analysis")
    wh.dashboards.update("trend-analysis", builder.retitle(first.document, "Mine"),
                         expected_version=1)
    with pytest.raises(DashboardError, match="changed by someone else since version 1"):
        wh.dashboards.update("trend-analysis", builder.retitle(first.document, "Theirs"),
                             expected_version=1)
    assert wh.dashboards.get("trend-analysis").title == "Mine"


def test_sharing_and_permissions(wh):
    wh.dashboards.create(template("error-analysis"), owner="ann")
    stored = wh.dashboards.get("error-analysis")
    assert stored.readable_by("ann") and not stored.readable_by("bob")
    assert stored.readable_by("root", "admin")
    shared = wh.dashboards.share("error-analysis", visibility="shared",
                                 shared_with=["bob", "role:editor"])
    assert shared.shared_with == ("bob", "role:editor") and shared.version == 1
    assert shared.readable_by("bob") and shared.readable_by("cy", "editor")
    assert not shared.readable_by("cy", "viewer")
    assert shared.writable_by("cy", "editor") and not shared.writable_by("bob", "viewer")
    assert wh.dashboards.list(user="cy", role="viewer").empty
    assert wh.dashboards.list(user="bob", role="viewer")["id"].tolist() == ["error-analysis"]
    public = wh.dashboards.share("error-analysis", visibility="public")
    assert public.readable_by(None) and not public.writable_by("dan", "viewer")
    with pytest.raises(DashboardError, match="unknown visibility 'everyone'"):
        wh.dashboards.share("error-analysis", visibility="everyone")
    assert wh.sql("SELECT visibility FROM dashboards")["visibility"].tolist() == ["public"]


def test_export_import_round_trip_is_identical_and_idempotent(wh, tmp_path):
    wh.dashboards.create(template("performance-overview"), owner="ann", visibility="shared",
                         shared_with=["bob"])
    wh.dashboards.edit("performance-overview", lambda d: builder.add_panel(d, PANEL))
    path = tmp_path / "perf.json"
    exported = wh.dashboards.export("performance-overview", path)
    assert exported["version"] == 2

    other = Warehouse(f"duckdb:///{tmp_path / 'other.duckdb'}")
    try:
        result = other.dashboards.import_(path)
        assert (result.status, result.version) == ("created", 2)
        again = other.dashboards.export("performance-overview")
        assert export_text(again) == path.read_text(encoding="utf-8")  # byte for byte
        assert other.dashboards.import_(path).status == "unchanged"
        assert len(other.dashboards.history("performance-overview")) == 1

        # a newer version from the source is added to the history there
        wh.dashboards.edit("performance-overview",
                           lambda d: builder.retitle(d, "Performance ${recipe}"))
        newer = other.dashboards.import_(wh.dashboards.export("performance-overview"))
        assert (newer.status, newer.version) == ("updated", 3)
        assert other.dashboards.get("performance-overview").title == "Performance ${recipe}"
        # the file already there (version 2) is still "unchanged"; a version older than
        # the current one that is not here, or a known version with another document, is
        # refused
        assert other.dashboards.import_(path).status == "unchanged"
        older = json.loads(path.read_text())
        older["version"] = 1
        with pytest.raises(DashboardError, match="older than the current 3"):
            other.dashboards.import_(older)
        tampered = json.loads(path.read_text())
        tampered["version"] = 3
        tampered["document"]["title"] = "Something else"
        with pytest.raises(DashboardError, match="version 3 already exists here with a "
                                                 "different document"):
            other.dashboards.import_(tampered)
    finally:
        other.close()


def test_import_reports_unknown_metrics_and_recipes(wh, tmp_path):
    wh.write_points([{"metric": "known.metric", "ts": "2026-11-01T00:00:00Z", "value": 1.0,
                      "labels": {"recipe": "etl"}}])
    document = {"id": "refs", "title": "Refs",
                "variables": [{"name": "recipe", "type": "recipe", "default": "ghost-recipe"},
                              {"name": "start", "type": "time"},
                              {"name": "end", "type": "time"}],
                "panels": [
                    {"id": "a", "title": "a", "type": "timeseries",
                     "query": {"kind": "points", "metric": "known.metric"}},
                    {"id": "b", "title": "b", "type": "timeseries",
                     "query": {"kind": "points", "metric": "missing.metric"}},
                    {"id": "c", "title": "c", "type": "table",
                     "query": {"kind": "runs", "recipe": "nowhere"}}]}
    payload = {"format": "warehouse-dashboard", "format_version": 1, "id": "refs",
               "version": 1, "title": "Refs", "owner": None, "visibility": "private",
               "shared_with": [], "document": document}
    result = wh.dashboards.import_(payload)
    assert result.status == "created"
    text = "\n".join(result.warnings)
    assert "panel 'b' field 'query.metric': unknown metric 'missing.metric'" in text
    assert "panel 'c' field 'query.recipe': unknown recipe 'nowhere'" in text
    assert "variable 'recipe': unknown recipe 'ghost-recipe'" in text
    assert "known.metric" not in text and len(result.warnings) == 3


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "grafana"}, "field 'format'"),
    ({"version": 0}, "field 'version'"),
    ({"version": True}, "field 'version'"),
    ({"visibility": "world"}, "field 'visibility'"),
    ({"shared_with": "bob"}, "field 'shared_with'"),
    ({"id": "other"}, "field 'id'"),
    ({"document": []}, "field 'document'"),
])
def test_bad_export_files_are_refused(wh, change, message):
    base = {"format": "warehouse-dashboard", "format_version": 1, "id": "trend-analysis",
            "version": 1, "visibility": "private", "shared_with": [],
            "document": template("trend-analysis").to_json()}
    with pytest.raises(DashboardError, match=message):
        wh.dashboards.import_({**base, **change})
    assert wh.dashboards.list().empty


def test_render_by_stored_id_or_built_in_name(wh):
    wh.dashboards.create(builder.add_panel(builder.empty("mine", "Mine"), PANEL))
    result = wh.dashboards.render("mine")
    assert result.errors == {} and result.panel("count").value == 0
    assert wh.dashboards.resolve("error-analysis").id == "error-analysis"
    with pytest.raises(DashboardError, match="no dashboard 'nope' stored"):
        wh.dashboards.render("nope")
