"""The built-in dashboards on demo data, on DuckDB and PostgreSQL: every panel renders
non-empty, and its numbers are the ones the same question asked through wh.points, wh.runs,
wh.steps or wh.sql gives. One failing panel does not stop the others. XLSX and HTML
exports of a rendered dashboard."""

from __future__ import annotations

import json
import os
import re

import openpyxl
import pandas as pd
import pytest

from tests.conftest import ENGINES
from warehouse import Warehouse, demo
from warehouse.dashboards import BUILT_IN, parse, render, template
from warehouse.dashboards.reports import ABOUT_SHEET, html_report, xlsx_report
from warehouse.export.html import plotly_js

pytestmark = pytest.mark.storage

END = pd.Timestamp("2026-11-20", tz="UTC")
START = END - pd.Timedelta(days=14)
SPLIT = END - pd.Timedelta(days=7)
RECIPE = "etl-hourly"
VARIABLES = {"recipe": RECIPE, "start": START.isoformat(), "end": END.isoformat()}


@pytest.fixture(scope="module", params=ENGINES)
def demo_wh(request, tmp_path_factory):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('dash') / 'w.duckdb'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(f"wh_dash_{os.getpid()}")
    wh = Warehouse(url)
    demo.load(wh, demo.generate(days=14, end=END, seed=11))
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def rendered(demo_wh):
    out = {}
    for name in BUILT_IN:
        variables = dict(VARIABLES)
        if name == "trend-analysis":
            variables["split"] = SPLIT.isoformat()
        out[name] = render(demo_wh, template(name), variables)
    return out


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_panel_of_every_built_in_renders_non_empty(rendered, name):
    result = rendered[name]
    assert result.errors == {}, result.errors
    for panel in result.panels:
        assert panel.frame is not None and len(panel.frame) > 0, panel.id
        assert panel.figure["data"], panel.id
        json.dumps(panel.to_json())  # the web dashboard's payload is plain JSON
    assert result.to_json()["variables"]["recipe"] == RECIPE


def _runs(wh):
    return wh.runs(recipe=RECIPE, start=START, end=END)


def test_performance_overview_numbers(demo_wh, rendered):
    result = rendered["performance-overview"]
    runs = _runs(demo_wh)
    finished = runs[runs["status"] != "running"]
    assert result.panel("runs").value == len(runs)
    assert result.panel("success_rate").value == pytest.approx(
        (finished["status"] == "succeeded").mean())
    for agg in ("p50", "p95"):
        expected = demo_wh.points("recipe.duration_ms", START, END, labels={"recipe": RECIPE},
                                  every="1d", agg=agg)
        got = result.panel("duration_percentiles").frame
        assert got["ts"].tolist() == expected["ts"].tolist()
        assert got[agg].to_numpy() == pytest.approx(expected["value"].to_numpy())
    p95 = demo_wh.points("recipe.duration_ms", START, END, labels={"recipe": RECIPE},
                         every="1d", agg="p95")
    assert result.panel("p95_duration").value == pytest.approx(p95["value"].iloc[-1])
    per_day = result.panel("runs_per_day").frame
    by_day = runs.assign(day=runs["started_at"].dt.date).groupby("day")["status"]
    assert per_day["runs"].sum() == len(runs)
    assert dict(zip(per_day["day"], per_day["failed"], strict=True)) == {
        d: int((s == "failed").sum()) for d, s in by_day}
    slowest = demo_wh.sql("SELECT step FROM step_stats WHERE recipe = :r "
                          "ORDER BY p95_duration_ms DESC LIMIT 1", {"r": RECIPE})
    assert result.panel("slowest_steps").frame["step"].iloc[0] == slowest["step"].iloc[0]
    forecast = result.panel("forecast").frame
    assert len(forecast) == 24
    assert (forecast["lo_95"] <= forecast["forecast"]).all()
    assert (forecast["forecast"] <= forecast["hi_95"]).all()
    with_steps = set(demo_wh.steps(recipe=RECIPE, start=START, end=END)["run_id"].astype(str))
    latest = finished[finished["run_id"].astype(str).isin(with_steps)].sort_values(
        "started_at").iloc[-1]
    steps = demo_wh.steps(latest["run_id"])
    assert result.panel("last_run_timeline").frame["step"].tolist() == steps["step"].tolist()


def test_resource_utilisation_numbers(demo_wh, rendered):
    result = rendered["resource-utilisation"]
    runs = _runs(demo_wh)
    cpu = (runs["cpu_user_us"] + runs["cpu_system_us"]) / 1e6
    assert result.panel("cpu_total").value == pytest.approx(cpu.sum())
    assert result.panel("peak_memory").value == runs["peak_rss_bytes"].max()
    top = result.panel("top_consumers").frame
    assert len(top) == 10
    assert top["run_id"].astype(str).iloc[0] == str(runs.loc[cpu.idxmax(), "run_id"])
    host = demo_wh.points("host.cpu_percent", START, END, every="1h", agg="mean", by=["host"])
    got = result.panel("host_cpu").frame
    assert len(got) == len(host)
    assert got["value"].to_numpy() == pytest.approx(host["value"].to_numpy())
    steps = demo_wh.steps(recipe=RECIPE)
    per_step = result.panel("cpu_per_step").frame.set_index("step")["mean_cpu_s"]
    expected = ((steps["cpu_user_us"] + steps["cpu_system_us"]) / 1e6).groupby(steps["step"]).mean()
    assert per_step.sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy())
    assert set(result.panel("host_cpu_trend").frame["key"]) == {f"host={h}" for h in demo.HOSTS}


def test_error_analysis_numbers(demo_wh, rendered):
    result = rendered["error-analysis"]
    runs = _runs(demo_wh)
    failed = runs[runs["status"] == "failed"]
    assert len(failed) > 0
    assert result.panel("failed_runs").value == len(failed)
    finished = runs[runs["status"] != "running"]
    assert result.panel("failure_rate").value == pytest.approx(
        (finished["status"] == "failed").mean())
    assert result.panel("retries").value == 0  # the demo never retries a step
    assert sorted(result.panel("failed_run_list").frame["run_id"].astype(str)) == sorted(
        failed["run_id"].astype(str))
    daily = result.panel("failure_rate_daily").frame
    assert daily["failed"].sum() == len(failed)
    patterns = result.panel("error_patterns").frame
    assert patterns["occurrences"].sum() >= len(failed)
    assert (patterns["first_seen"] <= patterns["last_seen"]).all()
    steps = demo_wh.steps(recipe=RECIPE)
    failing = result.panel("failing_steps").frame.set_index("step")["failed"]
    assert failing["load"] == int(((steps["step"] == "load") & (steps["status"] == "failed")).sum())
    heat = result.panel("failures_by_step_day").frame
    assert heat["failed"].sum() == int((steps["status"] == "failed").sum())


def test_trend_analysis_numbers(demo_wh, rendered):
    result = rendered["trend-analysis"]
    expected = demo_wh.points("step.duration_ms", START, END, labels={"recipe": RECIPE},
                              every="1d", agg="mean", by=["step"])
    got = result.panel("step_durations").frame
    assert got["value"].to_numpy() == pytest.approx(expected["value"].to_numpy())
    trends = result.panel("step_trends").frame.set_index("key")
    assert len(trends) == 4
    transform = trends.loc[next(k for k in trends.index if "step=transform" in k)]
    assert transform["slope_lo"] <= transform["slope_per_day"] <= transform["slope_hi"]
    assert transform["slope_per_day"] > 0  # the demo's transform slows 2% a day
    comparison = result.panel("period_comparison").frame.set_index("metric")
    runs = demo_wh.runs(recipe=RECIPE, start=START, end=END)
    before = (runs["started_at"] < SPLIT).sum()
    assert comparison.loc["runs", "previous"] == before
    assert comparison.loc["runs", "last"] == len(runs) - before


def test_step_variable_narrows_the_trend_panels(demo_wh):
    result = render(demo_wh, template("trend-analysis"),
                    {**VARIABLES, "split": SPLIT.isoformat(), "step": "transform"},
                    panels=["step_durations", "change_points"])
    assert result.errors == {}
    assert set(result.panel("step_durations").frame["step"]) == {"transform"}
    assert result.panel("change_points").frame["key"].iloc[0] == f"{RECIPE}/transform"


def test_one_failing_panel_does_not_stop_the_others(demo_wh):
    document = {"id": "mixed", "title": "Mixed",
                "variables": [{"name": "recipe", "type": "recipe", "default": RECIPE}],
                "panels": [
                    {"id": "good", "title": "ok", "type": "table",
                     "query": {"kind": "sql", "sql": "SELECT count(*) AS n FROM runs WHERE "
                                                     "recipe = :recipe"}},
                    {"id": "bad_column", "title": "bad", "type": "table",
                     "query": {"kind": "sql", "sql": "SELECT no_such_column FROM runs"}},
                    {"id": "secrets", "title": "users", "type": "table",
                     "query": {"kind": "sql", "sql": "SELECT * FROM users"}},
                    {"id": "no_metric", "title": "m", "type": "timeseries",
                     "query": {"kind": "points", "metric": "nope", "start": None,
                               "end": None}},
                    {"id": "no_data", "title": "m", "type": "timeseries",
                     "query": {"kind": "points", "metric": "recipe.duration_ms",
                               "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}},
                    {"id": "bad_visual", "title": "v", "type": "bar",
                     "query": {"kind": "sql", "sql": "SELECT 1 AS a"},
                     "visual": {"x": "missing"}}]}
    result = render(demo_wh, parse(document))
    assert result.panel("good").frame["n"].iloc[0] == len(demo_wh.runs(recipe=RECIPE))
    assert set(result.errors) == {"bad_column", "secrets", "bad_visual", "no_metric"}
    assert "unknown metric 'nope'" in result.errors["no_metric"]
    assert "ReadOnlyError" in result.errors["secrets"]
    assert "visual.x" in result.errors["bad_visual"]
    assert result.panel("no_data").frame.empty  # no data is not an error
    assert result.panel("no_data").figure["layout"]["annotations"][0]["text"] == "no data"


def test_xlsx_export_has_a_sheet_per_panel_with_types_and_rows(rendered, tmp_path):
    result = rendered["performance-overview"]
    path = tmp_path / "perf.xlsx"
    xlsx_report(result, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [ABOUT_SHEET, *[p.id for p in result.panels]]
    for panel in result.panels:
        sheet = book[panel.id]
        assert sheet.max_row == len(panel.frame) + 1, panel.id  # header + rows
        header = [c.value for c in sheet[1]]
        assert header == [str(c) for c in panel.frame.columns]
    slow = book["slow_runs"]
    header = [c.value for c in slow[1]]
    started = slow.cell(row=2, column=header.index("started_at") + 1)
    assert started.is_date and started.value.tzinfo is None
    expected = result.panel("slow_runs").frame["started_at"].iloc[0]
    assert started.value == expected.tz_convert("UTC").tz_localize(None).to_pydatetime()
    assert isinstance(slow.cell(row=2, column=header.index("duration_ms") + 1).value, float)
    assert isinstance(book["runs"].cell(row=2, column=1).value, int)


def test_html_report_is_self_contained(rendered, tmp_path):
    result = rendered["error-analysis"]
    path = tmp_path / "errors.html"
    html_report(result, path)
    text = path.read_text(encoding="utf-8")
    assert plotly_js() in text  # inlined, not fetched
    ours = text.replace(plotly_js(), "")
    assert "<script src=" not in ours and "http" not in ours.replace(
        'xmlns="http', "")
    assert "Plotly.newPlot" in text and text.count('data-figure="figure-') == len(result.panels)
    assert "</script><script>alert" not in text


def _expand_grafana_macros(sql: str) -> str:
    """What Grafana's PostgreSQL data source does to the macros, for START..END."""
    def stamp(ts):
        return f"CAST('{ts.isoformat()}' AS timestamptz)"

    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m[1]} BETWEEN {stamp(START)} AND {stamp(END)}", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),\s*([^)]+)\)",
                 lambda m: (f"to_timestamp(floor(extract(epoch from {m[1]}) / 86400) * 86400) "
                            f"AS time"), sql)
    sql = sql.replace("$__timeFrom()", stamp(START)).replace("$__timeTo()", stamp(END))
    return sql.replace("${recipe}", RECIPE).replace("${step}", "").replace("$every", "1d")


@pytest.mark.parametrize("name", BUILT_IN)
def test_grafana_panels_sql_runs_on_the_views(demo_wh, rendered, name):
    from warehouse.dashboards.grafana import grafana_dashboard

    board = grafana_dashboard(template(name))
    ran = 0
    for panel in board["panels"]:
        if panel["type"] == "text":
            continue
        frame = demo_wh.sql(_expand_grafana_macros(panel["targets"][0]["rawSql"]))
        assert len(frame) > 0, panel["title"]
        ran += 1
    assert ran >= 2
    if name == "performance-overview":
        runs = next(p for p in board["panels"] if p["title"] == "Runs")
        count = demo_wh.sql(_expand_grafana_macros(runs["targets"][0]["rawSql"]))
        # BETWEEN includes the end instant; no run starts exactly at END in the demo
        assert count["runs"].iloc[0] == rendered[name].panel("runs").value


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["performance-overview", "trend-analysis"])
def test_html_report_draws_in_a_real_browser_offline(rendered, tmp_path, name):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install -y chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    result = rendered[name]
    path = tmp_path / "report.html"
    html_report(result, path)
    figures = sum(1 for p in result.panels if p.figure is not None)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            errors, fetched = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot').length >= {figures}",
                timeout=60_000)
            drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg')"
                                  ".length")
        finally:
            browser.close()
    assert errors == []
    assert [u for u in fetched if not u.startswith("file:")] == []  # nothing from the network
    assert drawn >= figures


def test_a_panel_returning_too_many_rows_fails_alone(demo_wh, monkeypatch):
    import importlib

    render_module = importlib.import_module("warehouse.dashboards.render")
    monkeypatch.setattr(render_module, "MAX_PANEL_ROWS", 5)
    result = render(demo_wh, template("error-analysis"), VARIABLES,
                    panels=["failed_runs", "failed_run_list"])
    assert result.panel("failed_runs").error is None
    assert "more than the 5 a panel shows" in result.errors["failed_run_list"]


def test_bottlenecks_and_anomalies_panels_are_the_analytics_results(demo_wh):
    from warehouse import analytics

    document = {"id": "analysis", "title": "Analysis",
                "variables": [{"name": "recipe", "type": "recipe", "required": True},
                              {"name": "start", "type": "time"}, {"name": "end", "type": "time"}],
                "panels": [
                    {"id": "bottlenecks", "title": "b", "type": "bar", "visual": {"x": "step",
                                                                                  "y": ["impact"]},
                     "query": {"kind": "analytics", "function": "bottlenecks",
                               "recipe": "$recipe"}},
                    {"id": "anomalies", "title": "a", "type": "timeseries",
                     "visual": {"x": "ts", "y": ["value", "expected"]},
                     "query": {"kind": "analytics", "function": "anomalies",
                               "recipe": "$recipe"}}]}
    result = render(demo_wh, parse(document), VARIABLES)
    assert result.errors == {}
    expected = analytics.bottlenecks(demo_wh, RECIPE, START, END)
    got = result.panel("bottlenecks").frame
    assert got["step"].tolist() == expected["step"].tolist()
    assert got["impact"].to_numpy() == pytest.approx(expected["impact"].to_numpy())
    anomalies = analytics.anomalies(demo_wh, recipe=RECIPE, start=START, end=END)
    assert result.panel("anomalies").frame["ts"].tolist() == anomalies["ts"].tolist()
    assert len(anomalies) > 0
