"""Analytics panels are computed once per version of their input, on both engines: a second
render with unchanged data reuses the forecast and the comparison, a new run changes the
input and the panel is computed again, equal to the uncached analysis."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from warehouse import analytics, demo
from warehouse.dashboards import render, template
from warehouse.dashboards.analysis_cache import CACHE

END = pd.Timestamp("2026-11-20", tz="UTC")
START = END - pd.Timedelta(days=14)
RECIPE = "etl-hourly"


def test_analytics_panels_are_reused_until_their_data_changes(wh):
    demo.load(wh, demo.generate(days=14, end=END, seed=11))
    dashboard = template("performance-overview")
    variables = {"recipe": RECIPE, "start": START.isoformat(), "end": END.isoformat()}
    CACHE.clear()
    first = render(wh, dashboard, variables, panels=["forecast"])
    assert (CACHE.hits, CACHE.misses) == (0, 1)
    again = render(wh, dashboard, variables, panels=["forecast"])
    assert (CACHE.hits, CACHE.misses) == (1, 1)
    pd.testing.assert_frame_equal(again.panel("forecast").frame, first.panel("forecast").frame)

    started = END - pd.Timedelta(minutes=50)
    wh.write_runs([{"run_id": str(uuid.uuid4()), "recipe": RECIPE, "started_at": started,
                    "finished_at": started + pd.Timedelta(minutes=40), "status": "succeeded"}])
    after = render(wh, dashboard, variables, panels=["forecast"])
    assert (CACHE.hits, CACHE.misses) == (1, 2)
    expected = analytics.forecast(wh, 24, recipe=RECIPE, start=END - pd.Timedelta(days=14),
                                  end=END)
    pd.testing.assert_frame_equal(after.panel("forecast").frame.reset_index(drop=True),
                                  expected.reset_index(drop=True))


def test_the_cached_comparison_is_the_comparison(wh):
    demo.load(wh, demo.generate(days=14, end=END, seed=11))
    split = END - pd.Timedelta(days=7)
    variables = {"recipe": RECIPE, "start": START.isoformat(), "split": split.isoformat(),
                 "end": END.isoformat()}
    CACHE.clear()
    renders = [render(wh, template("trend-analysis"), variables, panels=["period_comparison"])
               for _ in range(2)]
    assert (CACHE.hits, CACHE.misses) == (1, 1)
    expected = analytics.compare(
        wh, {"recipe": RECIPE, "start": START, "end": split, "label": "previous"},
        {"recipe": RECIPE, "start": split, "end": END, "label": "last"})
    for result in renders:
        got = result.panel("period_comparison").frame
        pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                      expected.reset_index(drop=True))
    assert len(expected) > 0


@pytest.fixture(autouse=True)
def _empty_cache():
    yield
    CACHE.clear()
