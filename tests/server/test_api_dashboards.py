"""Dashboards over HTTP (/api/v1/dashboards), on DuckDB and PostgreSQL: the builder's
functions, conflicts, per-dashboard permissions by role, problem+json naming the field,
exports in every format, and the same calls through the remote client and the CLI.

Another user's dashboard the caller may not read answers 404 (as a missing one would), one
the caller may read but not edit answers 403."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.server.conftest import ThreadServer, clients_by_user
from warehouse.client import RemoteWarehouse
from warehouse.client.remote_objects import RemoteDashboards
from warehouse.dashboards import DashboardError, builder
from warehouse.dashboards.store import Dashboards
from warehouse.server.app import create_app

API = "/api/v1"
PASSWORD = "correct horse battery"
T0 = pd.Timestamp("2026-11-01T00:00:00Z")
WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
PANEL = {"id": "cpu", "title": "CPU", "type": "timeseries",
         "query": {"kind": "points", "metric": "cpu", "every": "1h", "agg": "mean"}}
USERS = {"vic": "viewer", "ed": "editor", "eve": "editor", "root": "admin"}


def document(dashboard_id: str = "ops", panels=(PANEL,)) -> dict:
    return {**builder.empty(dashboard_id, "Ops").to_json(), "panels": list(panels)}


def write_cpu(wh) -> None:
    wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * 6,
                                  "ts": [T0 + pd.Timedelta(minutes=30 * i) for i in range(6)],
                                  "value": [1.0, 3, 5, 7, 9, 11]}))


def assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if kind:
        assert body["type"].endswith("/" + kind), body
    return body


@pytest.fixture
def users(wh):
    """A TestClient per user (bearer token of the role's widest scope)."""
    return clients_by_user(wh, USERS, PASSWORD)


def test_build_a_dashboard_over_http(client, wh):
    write_cpu(wh)
    created = client.post(f"{API}/dashboards", json={"id": "ops", "title": "Ops"})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.json()["document"]["panels"] == []
    edit = {"operations": [{"op": "add_panel", "panel": PANEL},
                           {"op": "add_panel", "panel": {**PANEL, "id": "cpu2"}},
                           {"op": "move_panel", "panel_id": "cpu2", "x": 12, "y": 0}],
            "expected_version": 1}
    saved = client.post(f"{API}/dashboards/ops/edit", json=edit).json()
    assert saved["version"] == 2
    assert [(p["id"], p["grid"]["x"]) for p in saved["document"]["panels"]] == [("cpu", 0),
                                                                              ("cpu2", 12)]
    # The same edit against the old version lost the race: 409, nothing saved.
    stale = client.post(f"{API}/dashboards/ops/edit", json=edit)
    assert assert_problem(stale, 409, "dashboard-conflict")["current_version"] == 2
    removed = client.post(f"{API}/dashboards/ops/edit", json={
        "operations": [{"op": "remove_panel", "panel_id": "cpu2"}]}).json()
    assert removed["version"] == 3 and len(removed["document"]["panels"]) == 1
    conflict = client.put(f"{API}/dashboards/ops", json={"document": removed["document"],
                                                         "expected_version": 2})
    assert_problem(conflict, 409, "dashboard-conflict")

    history = client.get(f"{API}/dashboards/ops/history").json()
    assert [h["panels"] for h in history] == [0, 2, 1]
    restored = client.post(f"{API}/dashboards/ops/restore", json={"version": 2}).json()
    assert restored["version"] == 4 and len(restored["document"]["panels"]) == 2
    assert client.get(f"{API}/dashboards/ops", params={"version": 1}).json()["version"] == 1

    rendered = client.get(f"{API}/dashboards/ops/render",
                          params={"variables": json.dumps(WINDOW)}).json()
    direct = wh.points("cpu", WINDOW["start"], WINDOW["end"], every="1h", agg="mean")
    panel = rendered["panels"][0]
    assert panel["error"] is None and panel["figure"]["data"]
    assert panel["data"]["value"] == direct["value"].tolist() == [2.0, 6.0, 10.0]

    exported = client.get(f"{API}/dashboards/ops/export").json()
    assert exported["format"] == "warehouse-dashboard" and exported["version"] == 4
    again = client.post(f"{API}/dashboards/import", json=exported).json()
    assert again["status"] == "unchanged"
    copy = {**exported, "id": "ops2", "document": {**exported["document"], "id": "ops2"}}
    assert client.post(f"{API}/dashboards/import", json=copy).json()["status"] == "created"
    assert client.delete(f"{API}/dashboards/ops2").json() == {"id": "ops2", "deleted": True}
    assert_problem(client.get(f"{API}/dashboards/ops2"), 404, "unknown-dashboard")
    assert [t["id"] for t in client.get(f"{API}/dashboard-templates").json()] == [
        "performance-overview", "resource-utilisation", "error-analysis", "trend-analysis"]


def test_exports_in_every_format(client, wh):
    write_cpu(wh)
    client.post(f"{API}/dashboards", json={"document": document()})
    variables = json.dumps(WINDOW)

    def get(fmt, panel="cpu"):
        params = {"format": fmt, "variables": variables, **({"panel": panel} if panel else {})}
        response = client.get(f"{API}/dashboards/ops/data", params=params)
        assert response.status_code == 200, response.text
        return response

    csv = pd.read_csv(io.BytesIO(get("csv").content))
    assert csv["value"].tolist() == [2.0, 6.0, 10.0]
    assert [r["value"] for r in get("json").json()] == [2.0, 6.0, 10.0]
    split = get("json-split").json()
    assert split["columns"][0] == "ts" and len(split["data"]) == 3
    parquet = pd.read_parquet(io.BytesIO(get("parquet").content))
    assert str(parquet["ts"].dt.tz) == "UTC" and parquet["value"].tolist() == [2.0, 6.0, 10.0]
    book = openpyxl.load_workbook(io.BytesIO(get("xlsx").content))
    assert book.sheetnames == ["data"] and book["data"].max_row == 4
    whole = openpyxl.load_workbook(io.BytesIO(get("xlsx", panel=None).content))
    assert whole.sheetnames == ["dashboard", "cpu"]
    html = get("html", panel=None)
    assert html.headers["content-type"].startswith("text/html") and b"<html" in html.content
    assert get("json", panel=None).json()["panels"][0]["rows"] == 3
    assert "attachment" in html.headers["content-disposition"]
    refused = client.get(f"{API}/dashboards/ops/data", params={"format": "csv"})
    assert assert_problem(refused, 422)["errors"][0]["field"] == "format"


def test_bad_input_is_problem_json_naming_the_field(client, wh):
    bad_panel = {**PANEL, "query": {**PANEL["query"], "agg": "p96"}}
    body = assert_problem(client.post(f"{API}/dashboards",
                                      json={"document": document(panels=[bad_panel])}),
                          422, "dashboard")
    assert body["errors"][0]["field"] == "query.agg" and "p96" in body["errors"][0]["message"]
    assert_problem(client.post(f"{API}/dashboards", json={"document": "x"}), 422,
                   "request-validation")
    empty = assert_problem(client.post(f"{API}/dashboards", json={"title": "t"}), 422)
    assert empty["errors"][0]["field"] == "id"
    client.post(f"{API}/dashboards", json={"document": document()})
    taken = assert_problem(client.post(f"{API}/dashboards", json={"document": document()}), 422)
    assert "already exists" in taken["detail"]
    missing = client.post(f"{API}/dashboards/ops/edit", json={"operations": [{"op": "add_panel"}]})
    assert assert_problem(missing, 422)["errors"][0]["field"] == "operations.0.panel"
    unknown = client.post(f"{API}/dashboards/ops/edit", json={
        "operations": [{"op": "remove_panel", "panel_id": "nope"}]})
    assert "nope" in assert_problem(unknown, 422, "dashboard")["detail"]
    variables = client.get(f"{API}/dashboards/ops/render", params={"variables": "[1]"})
    assert assert_problem(variables, 422)["errors"][0]["field"] == "variables"
    bad_variable = client.get(f"{API}/dashboards/ops/render",
                              params={"variables": json.dumps({"nope": 1})})
    assert_problem(bad_variable, 422, "dashboard")
    required = client.get(f"{API}/dashboards/performance-overview/render")
    assert assert_problem(required, 422, "dashboard")["errors"][0]["field"] == "variables.recipe"
    assert_problem(client.get(f"{API}/dashboards/nosuch"), 404, "unknown-dashboard")
    assert_problem(client.post(f"{API}/dashboards/import", json={"format": "x"}), 422,
                   "dashboard")


def test_permissions_per_dashboard_and_role(users, wh):
    ed, eve, vic, root = (users[n] for n in ("ed", "eve", "vic", "root"))
    shares = {"mine": ("private", []), "to-vic": ("shared", ["vic"]),
              "to-editors": ("shared", ["role:editor"]), "open": ("public", [])}
    for dashboard_id, (visibility, shared) in shares.items():
        response = ed.post(f"{API}/dashboards", json={
            "document": document(dashboard_id), "visibility": visibility, "shared_with": shared})
        assert response.status_code == 201 and response.json()["owner"] == "ed"

    def ids(client):
        return sorted(d["id"] for d in client.get(f"{API}/dashboards").json())

    assert ids(vic) == ["open", "to-vic"]
    assert ids(eve) == ["open", "to-editors"]
    assert ids(ed) == ids(root) == ["mine", "open", "to-editors", "to-vic"]
    assert_problem(vic.get(f"{API}/dashboards", params={"user": "ed"}), 403)
    assert [d["id"] for d in root.get(f"{API}/dashboards", params={
        "user": "vic", "role": "viewer"}).json()] == ["open", "to-vic"]

    edit = {"operations": [{"op": "retitle", "title": "Renamed"}]}
    sharing = {"visibility": "public"}
    # ((caller, method, path, body), status) for every dashboard route for each kind of caller.
    expected = [
        # a viewer reads what is shared with it; 404 for a private one; never writes (scope)
        (("vic", "GET", "/dashboards/to-vic", None), 200),
        (("vic", "GET", "/dashboards/to-vic/render", None), 200),
        (("vic", "GET", "/dashboards/to-vic/history", None), 200),
        (("vic", "GET", "/dashboards/to-vic/export", None), 200),
        (("vic", "GET", "/dashboards/mine", None), 404),
        (("vic", "GET", "/dashboards/mine/render", None), 404),
        (("vic", "GET", "/dashboards/mine/history", None), 404),
        (("vic", "GET", "/dashboards/mine/export", None), 404),
        (("vic", "GET", "/dashboards/mine/data?format=html", None), 404),
        (("vic", "POST", "/dashboards/to-vic/edit", edit), 403),
        (("vic", "POST", "/dashboards", {"id": "v", "title": "v"}), 403),
        (("vic", "DELETE", "/dashboards/to-vic", None), 403),
        # another editor: edits one shared with editors, not its sharing; 404 for private
        (("eve", "GET", "/dashboards/mine", None), 404),
        (("eve", "POST", "/dashboards/mine/edit", edit), 404),
        (("eve", "GET", "/dashboards/open", None), 200),
        (("eve", "POST", "/dashboards/open/edit", edit), 403),
        (("eve", "POST", "/dashboards/to-editors/edit", edit), 200),
        (("eve", "POST", "/dashboards/to-editors/restore", {"version": 1}), 200),
        (("eve", "PUT", "/dashboards/to-editors/sharing", sharing), 403),
        (("eve", "DELETE", "/dashboards/to-editors", None), 403),
        (("eve", "POST", "/dashboards", {"id": "e", "title": "e", "owner": "ed"}), 403),
        (("eve", "POST", "/dashboards", {"id": "e", "title": "e", "author": "ed"}), 403),
        # the owner and an admin do everything
        (("ed", "PUT", "/dashboards/mine/sharing", {"visibility": "shared",
                                                    "shared_with": ["eve"]}), 200),
        (("root", "GET", "/dashboards/mine", None), 200),
        (("root", "POST", "/dashboards/mine/edit", edit), 200),
        (("root", "PUT", "/dashboards/to-vic/sharing", sharing), 200),
        (("root", "DELETE", "/dashboards/open", None), 200),
        (("ed", "DELETE", "/dashboards/to-vic", None), 200),
    ]
    for (user, method, path, body), status in expected:
        response = users[user].request(method, API + path, json=body)
        assert response.status_code == status, (user, method, path, response.text)
        if status >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
    # The refused changes changed nothing; the allowed ones are in the history.
    assert [h["author"] for h in root.get(f"{API}/dashboards/to-editors/history").json()] == [
        "ed", "eve", "eve"]
    assert root.get(f"{API}/dashboards/mine").json()["shared_with"] == ["eve"]
    # importing over a dashboard the caller may not edit is refused; a new one is the caller's
    exported = root.get(f"{API}/dashboards/mine/export").json()
    newer = {**exported, "version": exported["version"] + 1}
    assert_problem(vic.post(f"{API}/dashboards/import", json=newer), 403)
    assert users["eve"].post(f"{API}/dashboards/import", json=newer).status_code == 200
    fresh = {**exported, "id": "eves", "document": {**exported["document"], "id": "eves"}}
    assert users["eve"].post(f"{API}/dashboards/import", json=fresh).json()["status"] == "created"
    assert root.get(f"{API}/dashboards/eves").json()["owner"] == "eve"


def test_remote_client_and_cli_through_a_served_warehouse(wh, tmp_path, monkeypatch):
    write_cpu(wh)
    with ThreadServer(create_app(wh)) as server, RemoteWarehouse(server.url) as remote:
        store = remote.dashboards
        assert isinstance(store, RemoteDashboards)
        stored = store.create(document())
        assert stored.version == 1 and stored.document == builder.parse(document())
        saved = store.edit("ops", lambda d: builder.add_panel(d, {**PANEL, "id": "cpu2"}))
        assert saved.version == 2 and [p.id for p in saved.document.panels] == ["cpu", "cpu2"]
        with pytest.raises(DashboardError, match="changed by someone else"):
            store.update("ops", saved.document, expected_version=1)
        with pytest.raises(DashboardError, match="agg"):
            store.create(document("bad", panels=[{**PANEL, "query": {"kind": "points",
                                                                     "metric": "cpu",
                                                                     "agg": "p96"}}]))
        with pytest.raises(DashboardError):
            store.get("nosuch")
        assert not store.exists("nosuch") and store.exists("ops")
        assert store.history("ops")["version"].tolist() == [1, 2]
        assert store.restore("ops", 1).version == 3
        assert store.share("ops", visibility="public").visibility == "public"
        pd.testing.assert_frame_equal(store.list(), wh.dashboards.list())

        remote_render = store.render("ops", WINDOW)
        local_render = wh.dashboards.render("ops", WINDOW)
        pd.testing.assert_frame_equal(remote_render.panel("cpu").frame,
                                      local_render.panel("cpu").frame)
        assert remote_render.panel("cpu").figure == json.loads(json.dumps(
            local_render.panel("cpu").figure, default=str))
        unsaved = store.render(document("draft"), WINDOW)
        assert unsaved.panels[0].frame["value"].tolist() == [2.0, 6.0, 10.0]
        assert store.resolve("trend-analysis").id == "trend-analysis"

        payload = store.export("ops", tmp_path / "ops.json")
        assert store.import_(tmp_path / "ops.json").status == "unchanged"
        assert payload == wh.dashboards.export("ops")

        # The CLI, unchanged, against WAREHOUSE_URL=http://...
        monkeypatch.setenv("WAREHOUSE_URL", server.url)
        from warehouse.cli import main

        def cli(*args):
            result = CliRunner().invoke(main, list(args), catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.output

        cli("dashboards", "create", "--from-template", "error-analysis", "--id", "errs")
        listed = json.loads(cli("dashboards", "list", "--format", "json"))
        assert sorted(d["id"] for d in listed) == ["errs", "ops"]
        cli("dashboards", "edit", "ops", "--title", "Renamed", "--author", "anonymous")
        assert wh.dashboards.get("ops").title == "Renamed"
        rendered = json.loads(cli("dashboards", "render", "ops", "--var",
                                  f"start={WINDOW['start']}", "--var", f"end={WINDOW['end']}",
                                  "--format", "json"))
        assert rendered["panels"][0]["data"]["value"] == [2.0, 6.0, 10.0]
        cli("export", "ops", "-o", str(tmp_path / "ops.xlsx"), "--var",
            f"start={WINDOW['start']}")
        cli("dashboards", "delete", "errs", "--yes")
        assert not wh.dashboards.exists("errs")


def test_remote_dashboards_has_every_method_of_the_local_store():
    public = {n for n in dir(Dashboards) if not n.startswith("_")}
    assert public - {n for n in dir(RemoteDashboards) if not n.startswith("_")} == set()
