"""Real-browser tests of the dashboard: Playwright driving Debian's Chromium (never a
downloaded browser) against a real uvicorn serving demo data.

Skipped with the reason when /usr/bin/chromium is absent; under WAREHOUSE_REQUIRE_BROWSER=1
(.ci/run) a missing browser fails instead. Screenshots go to tests/web/artifacts/
(gitignored); ``WAREHOUSE_DOCS_SCREENSHOTS=1`` also writes the README's docs/img/*.png.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.server.conftest import ThreadServer
from warehouse import Warehouse, accounts, demo
from warehouse.server.app import ServerSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
RUNNING_ID = str(uuid.UUID(int=0xA11CE))
FAILED_ID = str(uuid.UUID(int=0xBAD))


def _chromium_present():
    """Skip a browser test, saying why, when Chromium is absent; fail under
    WAREHOUSE_REQUIRE_BROWSER=1 (CI must not pass by skipping them)."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent (apt-get install chromium, or `make system-deps` as root)"
    if os.environ.get("WAREHOUSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; WAREHOUSE_REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


class Served(ThreadServer):
    """uvicorn serving the dashboard of ``wh`` on a free loopback port, in a thread."""

    def __init__(self, wh, settings: ServerSettings | None = None):
        self.wh = wh
        self.app = create_app(wh, listen_host="127.0.0.1", settings=settings)
        super().__init__(self.app)


def load_demo(wh) -> None:
    """Two days of demo runs ending this hour, plus one run in progress and one failure
    whose error text is hostile markup (it must show as text)."""
    now = pd.Timestamp.now(tz="UTC")
    demo.load(wh, demo.generate(days=2, end=now.floor("h"), seed=7))
    wh.write_runs(pd.DataFrame([
        {"run_id": RUNNING_ID, "recipe": "etl-hourly", "status": "running",
         "started_at": now - pd.Timedelta(minutes=5), "host": "worker-9"},
        {"run_id": FAILED_ID, "recipe": "etl-hourly", "status": "failed",
         "started_at": now - pd.Timedelta(minutes=30),
         "finished_at": now - pd.Timedelta(minutes=29), "host": "worker-9",
         "error_type": "ValueError", "error_message": "<script>alert(1)</script> bad row 7"},
    ]))
    wh.write_steps(pd.DataFrame([
        {"run_id": RUNNING_ID, "step_id": "0-extract", "step": "extract", "ordinal": 0,
         "started_at": now - pd.Timedelta(minutes=5), "finished_at": now - pd.Timedelta(minutes=4),
         "status": "succeeded"},
        {"run_id": RUNNING_ID, "step_id": "1-transform", "step": "transform", "ordinal": 1,
         "started_at": now - pd.Timedelta(minutes=4), "status": "running"},
    ]))


@pytest.fixture(scope="session")
def browser():
    _chromium_present()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def duck_served(tmp_path_factory):
    """One DuckDB demo warehouse served for a test module, with users admin, editor and
    viewer (so every page needs a login)."""
    wh = Warehouse(f"duckdb:///{tmp_path_factory.mktemp('web') / 'w.duckdb'}")
    load_demo(wh)
    for role in ("admin", "editor", "viewer"):
        accounts.add_user(wh, role, role, PASSWORD)
    with Served(wh) as served:
        yield served
    wh.close()


class Pages:
    """Browser contexts that collect console errors and failed requests (a test fails on
    any), logged in through the login route when ``user`` is given."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.errors: list[str] = []
        self.contexts = []
        self.allowed: list[str] = []  # console messages a test provokes on purpose

    def open(self, user: str | None = None, viewport=DESKTOP):
        context = self.browser.new_context(base_url=self.base_url, viewport=viewport)
        self.contexts.append(context)
        if user:
            response = context.request.post("/api/v1/auth/login",
                                            form={"name": user, "password": PASSWORD})
            assert response.ok, response.text()
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and not any(
            a in m.text for a in self.allowed) and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser, request):
    """A :class:`Pages` for the served warehouse the test uses (duck_served by default)."""
    made: list[Pages] = []

    def factory(served) -> Pages:
        made.append(Pages(browser, served.url))
        return made[-1]

    yield factory
    errors = [e for p in made for e in p.errors]
    for p in made:
        p.close()
    assert not errors, f"console errors: {errors}"


def shoot(page, name: str, docs: str | None = None) -> Path:
    """A full-page screenshot under tests/web/artifacts/; with ``docs`` and
    WAREHOUSE_DOCS_SCREENSHOTS=1 also the viewport as docs/img/<docs>.png (the README's)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("WAREHOUSE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / f"{docs}.png"), full_page=False)
    return path


def wait_charts(page, selector: str = ".chart") -> None:
    """Wait until every chart on the page is drawn (Plotly's svg) or says it is empty."""
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(n => n.querySelector('.main-svg') "
        "|| n.querySelector('.empty'))", arg=selector, timeout=15_000)


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
