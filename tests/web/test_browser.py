"""The dashboard in a real browser on DuckDB demo data, logged in as admin/editor/viewer:
drill-down by clicking chart points and rows, export, roles, login, phone layout."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from tests.web.conftest import (
    FAILED_ID,
    PHONE,
    RUNNING_ID,
    no_horizontal_overflow,
    shoot,
    wait_charts,
)
from warehouse.server import ws as live

pytestmark = pytest.mark.slow


def click_plot_point(page, selector: str) -> None:
    """Click the centre of one drawn point/bar (Plotly finds the nearest one)."""
    box = page.locator(selector).first.bounding_box()
    assert box, f"nothing drawn at {selector}"
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_drill_down_overview_recipe_run_step(duck_served, pages):
    browser = pages(duck_served)
    page = browser.open("admin")
    page.goto("/?range=7d")
    wait_charts(page)
    rows = page.locator("#table-recipes tbody tr")
    assert rows.count() == 3
    assert page.locator("#table-recipes").inner_text().count("etl-hourly") == 1
    # In-progress and failed runs are listed; hostile error text shows as text.
    assert page.locator(f'#table-running a[href="/runs/{RUNNING_ID}"]').count() == 1
    assert "<script>alert(1)</script>" in page.locator("#table-failures").inner_text()
    page.wait_for_selector("#live.on")
    shoot(page, "overview-desktop", docs="dashboard-overview")

    # Overview chart: a bar opens its recipe, keeping the time range.
    bars = page.locator("#chart-recipes .barlayer .trace:first-child .point path")
    assert bars.count() == 3
    with page.expect_navigation():
        click_plot_point(page, "#chart-recipes .barlayer .trace:first-child .point:first-child path")
    assert re.search(r"/recipes/etl-hourly\?range=7d$", page.url), page.url
    wait_charts(page)
    shoot(page, "recipe-desktop")

    # Recipe chart: a run point opens the run.
    with page.expect_navigation():
        click_plot_point(page, "#chart-runs .scatterlayer .trace .points path")
    assert re.search(r"/runs/[0-9a-f-]{36}$", page.url), page.url
    run_id = page.url.rsplit("/", 1)[1]
    wait_charts(page)
    assert run_id in page.locator(".facts").inner_text()
    bars = page.locator("#chart-timeline .barlayer .point path")
    assert bars.count() == duck_served.wh.steps(run_id).shape[0]
    shoot(page, "run-desktop")

    # A finished run with its four steps and resources (the README's picture).
    finished = duck_served.wh.runs(recipe="etl-hourly", status="succeeded").run_id.iloc[-1]
    page.goto(f"/runs/{finished}")
    wait_charts(page)
    shoot(page, "run-finished-desktop", docs="dashboard-run")
    page.go_back()
    wait_charts(page)

    # Gantt: a step bar opens the step across runs.
    with page.expect_navigation():
        click_plot_point(page, "#chart-timeline .barlayer .point path")
    assert re.search(r"/recipes/etl-hourly/steps/[a-z]+$", page.url), page.url
    wait_charts(page)
    assert page.locator("#chart-step .scatterlayer .points path").count() > 10
    shoot(page, "step-desktop")

    # A row of the executions table opens its run.
    link = page.locator("#table-executions tbody tr a").first
    href = link.get_attribute("href")
    with page.expect_navigation():
        link.click()
    assert page.url.endswith(href)

    # The recipe's table filters by status through the URL, and pages.
    page.goto("/recipes/etl-hourly?range=7d")
    page.select_option("#status", "failed")
    with page.expect_navigation():
        page.click("form.filters button")
    assert "status=failed" in page.url
    statuses = page.locator("#table-runs .status").all_inner_texts()
    assert statuses and set(statuses) == {"failed"}
    assert page.locator(f'#table-runs tr[data-run="{FAILED_ID}"]').count() == 1

    page.goto("/metrics?metric=host.cpu_percent&by=host&range=24h")
    wait_charts(page)
    assert page.locator("#chart-metrics .scatterlayer .trace").count() == 3
    shoot(page, "metrics-desktop")
    page.goto("/alerts")
    assert page.locator("h1").inner_text() == "Alerts"
    shoot(page, "alerts-desktop")
    page.goto("/dashboards")
    with page.expect_navigation():
        page.click('#table-built-in a[href="/dashboards/performance-overview"]')
    assert "recipe" in page.locator(".problem").inner_text()  # a variable to fill in
    page.fill('input[name="recipe"]', "etl-hourly")
    with page.expect_navigation():
        page.click("form.filters button")
    assert "recipe=etl-hourly" in page.url
    wait_charts(page)
    assert page.locator(".grid-panel .main-svg").count() >= 3
    assert page.locator("h1").inner_text() == "Performance overview: etl-hourly"
    shoot(page, "dashboard-desktop")


def test_time_picker_keeps_state_in_the_url(duck_served, pages):
    browser = pages(duck_served)
    page = browser.open("viewer")
    page.goto("/recipes/report-build")
    assert page.locator("#range").input_value() == "7d"
    with page.expect_navigation():
        page.select_option("#range", "24h")
    assert page.url.endswith("/recipes/report-build?range=24h")
    page.select_option("#range", "custom")
    page.fill("#from", "now-36h")
    page.fill("#to", "now-12h")
    with page.expect_navigation():
        page.click("form.picker button")
    assert "range=custom&from=now-36h&to=now-12h" in page.url
    shown = page.locator("#table-runs tbody tr").count()
    runs = duck_served.wh.runs(recipe="report-build", start="now-36h", end="now-12h")
    assert shown == len(runs) > 0
    browser.allowed.append("status of 400")  # the error page answers 400, on purpose
    page.goto("/recipes/report-build?range=forever")
    assert "range must be one of" in page.locator(".problem").inner_text()


def test_export_csv_matches_points(duck_served, pages):
    page = pages(duck_served).open("viewer")
    page.goto("/metrics?metric=host.cpu_percent&labels=host%3Dworker-2&every=raw&range=24h")
    wait_charts(page)
    with page.expect_download() as download:
        page.click('[data-export="points-csv"]')
    exported = pd.read_csv(io.StringIO(open(download.value.path(), encoding="utf-8").read()))
    window = page.evaluate("window.__dashboard.data.window")
    expected = duck_served.wh.points("host.cpu_percent", window["start"], window["end"],
                                     labels={"host": "worker-2"})
    assert len(exported) == len(expected) > 1000
    assert list(pd.to_datetime(exported["ts"], utc=True)) == list(expected["ts"].sort_values())
    assert exported["value"].round(9).tolist() == expected.sort_values("ts")["value"].round(
        9).tolist()
    with page.expect_download() as download:
        page.click('[data-export="points-json"]')
    assert len(pd.read_json(download.value.path())) == len(expected)


def test_roles_and_forbidden_message(duck_served, pages):
    browser = pages(duck_served)
    viewer = browser.open("viewer")
    for path in ("/", "/metrics", "/recipes/etl-hourly", f"/runs/{RUNNING_ID}"):
        viewer.goto(path)
        assert viewer.locator(".edit-control").count() == 0, path
    assert viewer.locator(".who").inner_text().endswith("viewer")
    # A refused call shows the API's reason instead of failing silently.
    browser.allowed.append("403")
    viewer.evaluate("import('/static/app.js').then(m => m.api('/api/v1/rollups/refresh', "
                    "{method: 'POST'})).catch(() => {})")
    message = viewer.locator("#message")
    message.wait_for(state="visible")
    assert "Not allowed" in message.inner_text() and "admin" in message.inner_text()

    editor = browser.open("editor")
    editor.goto("/metrics?metric=recipe.duration_ms")
    assert editor.locator("form#add-point").count() == 1
    editor.goto("/")
    assert editor.locator("[data-post]").count() == 0  # maintenance is for admins
    admin = browser.open("admin")
    admin.goto("/")
    admin.click("[data-post='/api/v1/rollups/refresh']")
    admin.locator("#message.message-info").wait_for()


def test_login_form_and_logout(duck_served, pages):
    browser = pages(duck_served)
    page = browser.open()
    page.goto("/recipes/etl-hourly?range=24h")
    assert "/login?next=" in page.url
    page.fill("#name", "viewer")
    browser.allowed.append("status of 401")  # the wrong password, on purpose
    page.fill("#password", "wrong password")
    page.click("form#login-form button")
    page.locator("#message").wait_for(state="visible")
    assert "wrong user name or password" in page.locator("#message").inner_text()
    page.fill("#password", "correct horse battery")
    with page.expect_navigation():
        page.click("form#login-form button")
    assert page.url.endswith("/recipes/etl-hourly?range=24h")
    with page.expect_navigation():
        page.click("#logout")
    assert page.url.endswith("/login")
    page.goto("/")
    assert "/login" in page.url


def test_phone_layout_has_no_horizontal_overflow(duck_served, pages):
    page = pages(duck_served).open("admin", viewport=PHONE)
    run_id = duck_served.wh.runs(recipe="ml-train").run_id.iloc[0]
    for name, path in (("overview", "/"), ("recipe", "/recipes/etl-hourly"),
                       ("run", f"/runs/{run_id}"), ("step", "/recipes/ml-train/steps/train"),
                       ("metrics", "/metrics?metric=host.cpu_percent&by=host"),
                       ("login", "/login")):
        page.goto(path)
        if name != "login":
            wait_charts(page)
        shoot(page, f"{name}-phone")
        assert no_horizontal_overflow(page), name
        # Every control is labelled and reachable by keyboard.
        unlabelled = page.locator("input:not([type=hidden]), select").evaluate_all(
            "els => els.filter(e => !e.labels || !e.labels.length).map(e => e.name)")
        assert unlabelled == [], (name, unlabelled)
        controls = page.locator("main a, main button, main input:not([type=hidden]), "
                                "main select").count()
        reached = set()
        for _ in range(min(controls, 25)):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("document.activeElement.tagName"))
        assert reached & {"A", "BUTTON", "INPUT", "SELECT"}, name


def test_busy_server_says_so_and_retries(duck_served, pages, monkeypatch):
    """Over the limit of live connections the page says so, backs off and gets back in."""
    monkeypatch.setattr(live, "BUSY_RETRY_S", 1)  # the wait the server asks for
    state = duck_served.app.state
    monkeypatch.setattr(state, "ws_limits", live.ConnectionLimits(total=0, per_principal=0),
                        raising=False)
    page = pages(duck_served).open("viewer", viewport=PHONE)
    page.goto("/")
    page.wait_for_selector("#message:has-text('Too many live connections, retrying')")
    assert page.text_content("#live") == "○ busy"
    shoot(page, "overview-busy-phone")
    state.ws_limits = live.ConnectionLimits(total=10, per_principal=10)
    page.wait_for_selector("#live.on", timeout=15_000)
    assert page.is_hidden("#message")
