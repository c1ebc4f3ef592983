"""An interval variable set to ``auto`` becomes a bucket width chosen from the dashboard's
range: at most MAX_BUCKETS buckets per series, from widths the rollups answer; the Grafana
export maps it to Grafana's auto interval."""

from __future__ import annotations

import pandas as pd
import pytest

from warehouse.dashboards import template
from warehouse.dashboards.buckets import MAX_BUCKETS, WIDTHS, auto_width
from warehouse.dashboards.grafana import grafana_dashboard
from warehouse.dashboards.render import resolve_variables
from warehouse.timeparse import interval_us

END = pd.Timestamp("2026-11-01", tz="UTC")


@pytest.mark.parametrize(("days", "width"), [(1 / 24, "1m"), (1, "5m"), (7, "15m"),
                                             (14, "1h"), (30, "1h"), (90, "6h"),
                                             (365, "1d"), (3650, "7d"), (36500, "7d")])
def test_auto_width_from_the_range(days, width):
    assert auto_width(END - pd.Timedelta(days=days), END) == width


def test_auto_width_is_the_narrowest_within_the_bucket_cap():
    for days in (0.5, 3, 20, 41.6, 41.7, 200, 1000):
        start = END - pd.Timedelta(days=days)
        chosen = auto_width(start, END)
        span_us = (END - start) / pd.Timedelta(microseconds=1)
        assert span_us / interval_us(chosen) <= MAX_BUCKETS
        narrower = WIDTHS[:WIDTHS.index(chosen)]
        assert all(span_us / interval_us(w) > MAX_BUCKETS for w in narrower)


def test_without_a_range_auto_is_daily():
    assert auto_width(None, END) == "1d"


def test_resource_utilisation_buckets_a_year_by_day_and_two_weeks_by_hour():
    dashboard = template("resource-utilisation")
    year = resolve_variables(dashboard, {"recipe": "etl", "start": (END - pd.Timedelta(
        days=365)).isoformat(), "end": END.isoformat()})
    assert year["every"] == "1d"
    fortnight = resolve_variables(dashboard, {"recipe": "etl", "start": (END - pd.Timedelta(
        days=14)).isoformat(), "end": END.isoformat()})
    assert fortnight["every"] == "1h"
    chosen = resolve_variables(dashboard, {"recipe": "etl", "every": "15m"})
    assert chosen["every"] == "15m"


def test_grafana_auto_interval():
    board = grafana_dashboard(template("resource-utilisation"))
    every = next(v for v in board["templating"]["list"] if v["name"] == "every")
    assert every["auto"] is True and every["auto_count"] == MAX_BUCKETS
    assert every["current"]["value"] == "$__auto_interval_every"
    fixed = grafana_dashboard(template("performance-overview"))
    every = next(v for v in fixed["templating"]["list"] if v["name"] == "every")
    assert every["auto"] is False and every["current"]["value"] == "1d"
