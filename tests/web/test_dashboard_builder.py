"""The dashboard builder in a real browser (DuckDB demo data, session logins): an editor
creates a dashboard, adds panels, moves and removes them and restores a version through the
page's forms; a change saved meanwhile and a bad query are refused with a message on the
page; a form post without the session's CSRF token is refused; a viewer sees no edit
controls."""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import shoot

pytestmark = pytest.mark.slow

RUNS = {"kind": "sql", "sql": "SELECT recipe, count(*) AS runs FROM runs "
                              "GROUP BY recipe ORDER BY recipe"}
FAILED = {"kind": "sql", "sql": "SELECT count(*) AS failed FROM runs WHERE status = 'failed'"}


def panel_titles(page) -> list[str]:
    return page.locator('[data-live="panels"] .grid-panel h2').all_inner_texts()


def add_panel(page, panel_id: str, title: str, kind: str, query: dict,
              visual: dict | None = None) -> None:
    if page.locator("#builder[open]").count() == 0:
        page.locator("#builder summary").click()
    form = page.locator("#add-panel")
    form.locator('[name="panel_id"]').fill(panel_id)
    form.locator('[name="title"]').fill(title)
    form.locator('[name="type"]').select_option(kind)
    form.locator('[name="query"]').fill(json.dumps(query))
    if visual:
        form.locator('[name="visual"]').fill(json.dumps(visual))
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()


def test_editor_builds_a_dashboard_and_a_viewer_only_reads_it(duck_served, pages):
    wh = duck_served.wh
    browser = pages(duck_served)
    page = browser.open("editor")
    page.goto("/dashboards")
    form = page.locator("#new-dashboard")
    form.locator('[name="id"]').fill("built-here")
    form.locator('[name="title"]').fill("Built in the browser")
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()
    assert page.url.endswith("/dashboards/built-here")
    assert page.locator("h1").inner_text() == "Built in the browser"
    assert page.locator("#builder[open]").count() == 1  # no panels yet: the builder is open

    add_panel(page, "runs", "Runs per recipe", "table", RUNS)
    add_panel(page, "failed", "Failed runs", "stat", FAILED, {"value": "failed"})
    assert panel_titles(page) == ["Runs per recipe", "Failed runs"]
    expected = wh.sql(RUNS["sql"])
    shown = page.locator("#h-runs").locator("xpath=ancestor::section").locator("tbody tr")
    assert shown.count() == len(expected)
    assert shown.first.inner_text().split("\t")[:2] == [expected["recipe"][0],
                                                        str(expected["runs"][0])]
    failed = int(wh.sql(FAILED["sql"])["failed"][0])
    assert page.locator("#h-failed").locator("xpath=ancestor::section").locator(
        ".stat").inner_text() == str(failed)
    shoot(page, "builder-two-panels")

    with page.expect_navigation():
        page.get_by_role("button", name="Move Failed runs up").click()
    assert panel_titles(page) == ["Failed runs", "Runs per recipe"]
    with page.expect_navigation():
        page.get_by_role("button", name="Remove Runs per recipe").click()
    assert panel_titles(page) == ["Failed runs"]
    stored = wh.dashboards.get("built-here")
    assert stored.owner == "editor" and stored.version == 5
    assert wh.dashboards.history("built-here")["author"].tolist() == ["editor"] * 5

    page.locator("#builder summary").click()
    page.locator('#restore-version [name="restore"]').select_option("3")
    with page.expect_navigation():
        page.locator('#restore-version button[type="submit"]').click()
    assert panel_titles(page) == ["Runs per recipe", "Failed runs"]
    assert wh.dashboards.get("built-here").version == 6

    # Someone saves meanwhile: the page's next edit is refused, not applied over it.
    wh.dashboards.share("built-here", visibility="public")
    from warehouse.dashboards import builder

    wh.dashboards.edit("built-here", lambda d: builder.retitle(d, "Renamed elsewhere"))
    with page.expect_navigation():
        page.get_by_role("button", name="Remove Failed runs").click()
    assert "changed by someone else" in page.locator("#builder-error").inner_text()
    assert len(wh.dashboards.get("built-here").document.panels) == 2
    page.goto("/dashboards/built-here")
    add_panel(page, "bad", "Bad", "table", {"kind": "sql", "sql": "DELETE FROM runs"})
    assert "bad" in page.locator("#builder-error").inner_text().lower()
    assert panel_titles(page) == ["Runs per recipe", "Failed runs"]

    # A form post that carries the session cookie but not its CSRF token is refused.
    context = page.context
    refused = context.request.post("/dashboards/built-here/panels/runs/remove",
                                   form={"version": "7"})
    assert refused.status == 403 and "CSRF" in refused.text()
    assert len(wh.dashboards.get("built-here").document.panels) == 2

    # A viewer reads the (now public) dashboard but gets no edit controls.
    viewer = browser.open("viewer")
    viewer.goto("/dashboards/built-here")
    assert panel_titles(viewer) == ["Runs per recipe", "Failed runs"]
    assert viewer.locator(".edit-control").count() == 0
    viewer.goto("/dashboards")
    assert viewer.locator("#new-dashboard").count() == 0
    viewer.goto("/dashboards/performance-overview")
    assert viewer.locator("#copy-dashboard").count() == 0
    shoot(viewer, "builder-viewer")


def test_editor_saves_a_copy_of_a_built_in(duck_served, pages):
    page = pages(duck_served).open("editor")
    page.goto("/dashboards/error-analysis?recipe=etl-hourly")
    form = page.locator("#copy-dashboard")
    form.locator('[name="id"]').fill("my-errors")
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()
    assert page.url.endswith("/dashboards/my-errors")
    copy = duck_served.wh.dashboards.get("my-errors")
    assert copy.owner == "editor"
    assert [p.id for p in copy.document.panels] == [
        p.id for p in duck_served.wh.dashboards.resolve("error-analysis").panels]
    assert page.locator("#builder").count() == 1
