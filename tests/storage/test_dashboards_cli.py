"""``warehouse dashboards ...`` and ``warehouse export``, called the way users call them, on
both engines."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from warehouse import Warehouse, demo
from warehouse.cli import main

END = pd.Timestamp("2026-11-20", tz="UTC")
VARS = ["--var", "recipe=etl-hourly", "--var", "start=2026-11-16T00:00:00Z",
        "--var", f"end={END.isoformat()}"]


def run(url, *args, ok=True):
    result = CliRunner().invoke(main, [*args, "--url", url], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output + result.stderr
    return result


@pytest.fixture
def url(database_url):
    wh = Warehouse(database_url)
    demo.load(wh, demo.generate(days=4, end=END, seed=2))
    wh.close()
    return database_url


def test_builder_commands_keep_history(url, tmp_path):
    created = json.loads(run(url, "dashboards", "create", "--from-template", "error-analysis",
                             "--id", "errs", "--owner", "ann", "--format", "json").stdout)
    assert created["id"] == "errs" and created["version"] == 1 and created["panels"] == 8
    panel = tmp_path / "panel.json"
    panel.write_text(json.dumps({"id": "n", "title": "Runs", "type": "stat",
                                 "query": {"kind": "sql", "sql": "SELECT count(*) AS n FROM runs"},
                                 "visual": {"value": "n"}}))
    edited = json.loads(run(url, "dashboards", "edit", "errs", "--add-panel", str(panel),
                            "--remove-panel", "retries", "--move-panel", "n=12,40,12,4",
                            "--author", "bob", "--format", "json").stdout)
    assert edited["version"] == 2 and edited["panels"] == 8
    shared = json.loads(run(url, "dashboards", "edit", "errs", "--visibility", "shared",
                            "--share", "bob", "--format", "json").stdout)
    assert shared["visibility"] == "shared" and shared["version"] == 2
    history = json.loads(run(url, "dashboards", "history", "errs", "--format", "json").stdout)
    assert [h["version"] for h in history] == [1, 2]
    assert [h["author"] for h in history] == ["ann", "bob"]
    restored = json.loads(run(url, "dashboards", "restore", "errs", "1", "--format",
                              "json").stdout)
    assert restored["version"] == 3
    document = json.loads(run(url, "dashboards", "show", "errs", "--format", "json").stdout)
    assert "retries" in [p["id"] for p in document["panels"]]
    listed = json.loads(run(url, "dashboards", "list", "--format", "json").stdout)
    assert [d["id"] for d in listed] == ["errs"]
    built_in = json.loads(run(url, "dashboards", "list", "--built-in", "--format",
                              "json").stdout)
    assert len(built_in) == 4
    run(url, "dashboards", "delete", "errs", "--yes")
    assert json.loads(run(url, "dashboards", "list", "--format", "json").stdout) == []


def test_bad_input_is_one_clear_line(url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "bad", "title": "B", "panels": [
        {"id": "p95", "title": "x", "type": "timeseries",
         "query": {"kind": "points", "metric": "m", "agg": "p96", "start": None,
                   "end": None}}]}))
    result = run(url, "dashboards", "create", "--file", str(bad), ok=False)
    assert result.exit_code == 1
    assert "panel 'p95' field 'query.agg': unknown aggregate 'p96'" in result.stderr
    result = run(url, "dashboards", "render", "nope", ok=False)
    assert result.exit_code == 1 and "no dashboard 'nope' stored" in result.stderr
    result = run(url, "dashboards", "edit", "x", "--move-panel", "p=1", ok=False)
    assert result.exit_code == 2 and "PANEL=X,Y" in result.stderr


def test_render_built_in(url):
    result = run(url, "dashboards", "render", "performance-overview", *VARS,
                 "--panel", "runs", "--panel", "runs_per_day", "--format", "json")
    rendered = json.loads(result.stdout)
    assert [p["id"] for p in rendered["panels"]] == ["runs", "runs_per_day"]
    runs = Warehouse(url).runs(recipe="etl-hourly", start="2026-11-16T00:00:00Z", end=END)
    assert rendered["panels"][0]["value"] == len(runs)
    csv = run(url, "dashboards", "render", "performance-overview", *VARS, "--panel",
              "runs_per_day", "--format", "csv").stdout
    assert csv.splitlines()[0] == "day,runs,succeeded,failed,cancelled"


def test_export_dashboard_and_query_files(url, tmp_path):
    html = tmp_path / "perf.html"
    run(url, "export", "performance-overview", *VARS, "-o", str(html))
    assert "Plotly.newPlot" in html.read_text()
    xlsx = tmp_path / "errors.xlsx"
    run(url, "export", "error-analysis", *VARS, "--format", "xlsx", "-o", str(xlsx))
    assert "failed_run_list" in openpyxl.load_workbook(xlsx).sheetnames
    parquet = tmp_path / "runs.parquet"
    run(url, "export", "SELECT run_id, recipe, started_at FROM runs WHERE recipe = :r",
        "--param", "r=report-build", "-o", str(parquet))
    frame = pd.read_parquet(parquet)
    assert len(frame) == 4 * 6 and str(frame["started_at"].dt.tz) == "UTC"
    panel_csv = tmp_path / "slow.csv"
    run(url, "export", "performance-overview", *VARS, "--panel", "slowest_steps",
        "-o", str(panel_csv))
    assert len(pd.read_csv(panel_csv)) == 4
    refused = run(url, "export", "DELETE FROM runs", "-o", str(tmp_path / "x.csv"), ok=False)
    assert refused.exit_code == 1 and "error:" in refused.stderr
    assert len(Warehouse(url).runs()) > 0


def test_dashboard_files_move_between_warehouses(url, tmp_path):
    run(url, "dashboards", "create", "--from-template", "trend-analysis")
    path = tmp_path / "trend.json"
    run(url, "dashboards", "export", "trend-analysis", "-o", str(path))
    other = f"duckdb:///{tmp_path / 'other.duckdb'}"
    imported = run(other, "dashboards", "import", str(path), "--format", "json")
    first = json.loads(imported.stdout)
    # the other warehouse has no data yet: reported, not dropped
    assert first["status"] == "created" and first["warnings"] == 1
    assert "unknown metric 'step.duration_ms'" in imported.stderr
    again = json.loads(run(other, "dashboards", "import", str(path), "--format",
                           "json").stdout)
    assert again["status"] == "unchanged"


def test_export_grafana_writes_dashboard_and_provisioning(url, tmp_path):
    out = tmp_path / "perf.grafana.json"
    result = json.loads(run(url, "dashboards", "export-grafana", "performance-overview",
                            "-o", str(out), "--format", "json").stdout)
    board = json.loads(out.read_text())
    assert board["uid"] == "performance-overview" and len(board["panels"]) == result["panels"]
    config = yaml.safe_load((tmp_path / "warehouse-datasource.yaml").read_text())
    assert config["datasources"][0]["uid"] == "recipe-warehouse"
