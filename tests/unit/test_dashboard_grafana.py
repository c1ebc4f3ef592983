"""The Grafana export has the structure Grafana's dashboard model expects (no Grafana here,
so the shape is tested), literals from documents cannot break out of the SQL, and the data
source provisioning file holds no password."""

from __future__ import annotations

import json

import pytest
import yaml

from warehouse.dashboards import BUILT_IN, parse, template
from warehouse.dashboards.grafana import (
    DATASOURCE_TYPE,
    grafana_dashboard,
    literal,
    provisioning_yaml,
)

GRAFANA_PANEL_TYPES = {"timeseries", "barchart", "table", "stat", "heatmap", "text"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_dashboard_json_has_grafanas_shape(name):
    dashboard = template(name)
    board = json.loads(json.dumps(grafana_dashboard(dashboard, datasource_uid="ds1")))
    assert {"uid", "title", "panels", "templating", "time", "schemaVersion"} <= set(board)
    assert isinstance(board["schemaVersion"], int) and len(board["uid"]) <= 40
    assert board["time"]["from"].startswith("now") and board["time"]["to"].startswith("now")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) == len(dashboard.panels)
    assert all(isinstance(i, int) for i in ids)
    for panel in board["panels"]:
        assert panel["type"] in GRAFANA_PANEL_TYPES
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= 24
        if panel["type"] == "text":
            assert "warehouse dashboards render" in panel["options"]["content"]
            continue
        assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": "ds1"}
        (target,) = panel["targets"]
        assert target["refId"] == "A" and target["format"] in ("table", "time_series")
        assert target["rawQuery"] is True and target["rawSql"].lstrip().upper().startswith(
            "SELECT")
        assert ":recipe" not in target["rawSql"] and ":start" not in target["rawSql"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "recipe" in variables and variables["recipe"]["type"] == "query"
    assert "start" not in variables and "end" not in variables  # Grafana's time picker


def test_points_panels_use_the_time_macros():
    board = grafana_dashboard(template("performance-overview"))
    sql = next(p for p in board["panels"] if p["title"].startswith("Run duration p50"))[
        "targets"][0]["rawSql"]
    assert "$__timeGroupAlias(p.ts, $every)" in sql and "$__timeFilter(p.ts)" in sql
    assert "FROM all_points" in sql


def test_the_slow_runs_panel_reads_the_view_it_reproduces():
    board = grafana_dashboard(template("performance-overview"))
    panel = next(p for p in board["panels"] if p["title"].startswith("Runs slower"))
    assert panel["type"] == "table"
    sql = panel["targets"][0]["rawSql"]
    assert "FROM slow_runs" in sql and "recipe = '${recipe}'" in sql
    assert "$__timeFilter(started_at)" in sql and sql.endswith("LIMIT 50")


def test_values_from_the_document_are_quoted_literals():
    assert literal("it's") == "'it''s'"
    assert literal("$recipe") == "'${recipe}'"
    document = {"id": "evil", "title": "E", "variables": [
        {"name": "start", "type": "time"}, {"name": "end", "type": "time"}],
        "panels": [{"id": "p", "title": "p", "type": "timeseries",
                    "query": {"kind": "points", "metric": "x'); DROP TABLE runs; --",
                              "labels": {"k'": "v'"}}}]}
    sql = grafana_dashboard(parse(document))["panels"][0]["targets"][0]["rawSql"]
    assert "'x''); DROP TABLE runs; --'" in sql and "->> 'k'''" in sql and "'v'''" in sql


def test_provisioning_file_names_the_database_but_not_the_password():
    text = provisioning_yaml("postgresql+psycopg://ann:s3cret@db.example:5433/wh")
    assert "s3cret" not in text
    config = yaml.safe_load(text)
    (source,) = config["datasources"]
    assert config["apiVersion"] == 1 and source["type"] == DATASOURCE_TYPE
    assert source["url"] == "db.example:5433" and source["jsonData"]["database"] == "wh"
    assert source["secureJsonData"]["password"] == "$WAREHOUSE_GRAFANA_PASSWORD"
    assert yaml.safe_load(provisioning_yaml(None))["datasources"][0]["user"] == "grafana_reader"
