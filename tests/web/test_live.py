"""Live updates in a real browser on DuckDB AND PostgreSQL: what is written through the API
appears in an open page without a reload, also after the socket dropped."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from tests.web.conftest import Pages, Served, load_demo, shoot, wait_charts
from warehouse import Warehouse

pytestmark = pytest.mark.slow


def post(served, path: str, rows: list[dict]) -> None:
    response = httpx.post(served.url + path, json=rows, timeout=30)
    assert response.status_code == 200, response.text


def test_overview_and_metrics_update_live(database_url, browser):
    engine = database_url.split(":", 1)[0].split("+", 1)[0]
    wh = Warehouse(database_url)
    load_demo(wh)
    now = pd.Timestamp.now(tz="UTC")
    post_first = {"metric": "live.latency", "labels": {"host": "web-1"},
                  "ts": (now - pd.Timedelta(minutes=10)).isoformat(), "value": 10.0}
    try:
        with Served(wh) as served:  # no users: open mode on loopback
            session = Pages(browser, served.url)
            page = session.open()
            page.goto("/")
            wait_charts(page)
            page.wait_for_selector("#live.on")
            shoot(page, f"overview-live-{engine}")
            page.evaluate("window.__notReloaded = true")
            page.evaluate("window.__rendered_end = window.__dashboard.data.window.end")
            run_id = str(uuid.uuid4())
            post(served, "/api/v1/runs", [{"run_id": run_id, "recipe": "report-build",
                                           "status": "running", "started_at": now.isoformat(),
                                           "host": "worker-7"}])
            page.wait_for_selector(f'#table-running a[href="/runs/{run_id}"]', timeout=10_000)
            assert page.evaluate("window.__notReloaded") is True
            # Export links pin the window the refresh shows, not the one of the render.
            shown_end = page.evaluate("window.__dashboard.data.window.end")
            assert shown_end > page.evaluate("window.__rendered_end")
            href = page.get_attribute('[data-export="failures-csv"]', "href")
            assert parse_qs(urlsplit(href).query)["to"] == [shown_end]
            caption = page.text_content(".window")  # '2026-01-02 10:00 → 2026-01-09 10:00 UTC'
            assert caption.endswith(f"{shown_end[:16].replace('T', ' ')} UTC"), caption

            post(served, "/api/v1/points", [post_first])
            page.goto("/metrics?metric=live.latency&range=1h&every=raw")
            wait_charts(page)
            page.wait_for_selector("#live.on")
            page.evaluate("window.__notReloaded = true")
            chart = "document.querySelector('#chart-metrics').dataset.points"
            assert page.evaluate(chart) == "1"
            post(served, "/api/v1/points", [{**post_first, "ts": now.isoformat(), "value": 42.0}])
            page.wait_for_function(f"{chart} === '2'", timeout=10_000)

            # The socket drops; a point written meanwhile shows once it reconnects.
            page.evaluate("window.__dashboard.socket.close()")
            post(served, "/api/v1/points", [{**post_first, "ts": (now + pd.Timedelta(
                seconds=1)).isoformat(), "value": 43.0}])
            page.wait_for_function(f"{chart} === '3'", timeout=15_000)
            assert page.evaluate("window.__notReloaded") is True
            shown = page.evaluate("window.__dashboard.data.tables.points.map(p => p.value)")
            stored = wh.points("live.latency", now - pd.Timedelta(hours=1),
                               now + pd.Timedelta(minutes=1))
            assert sorted(shown) == sorted(stored["value"].tolist()) == [10.0, 42.0, 43.0]

            # A point written after the page was rendered is in the chart and in its export.
            post(served, "/api/v1/points", [{**post_first, "value": 44.0,
                                             "ts": pd.Timestamp.now(tz="UTC").isoformat()}])
            page.wait_for_function(f"{chart} === '4'", timeout=10_000)
            with page.expect_download() as download:
                page.click('[data-export="points-csv"]')
            exported = pd.read_csv(download.value.path())
            assert sorted(exported["value"]) == [10.0, 42.0, 43.0, 44.0]
            session.close()
            assert not session.errors, session.errors
    finally:
        wh.close()
