"""Anomaly and forecast rules through warehouse.analytics' public API, on both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warehouse.alerts import AlertManager

TS = pd.date_range("2026-11-20", periods=600, freq="5min", tz="UTC")


def load(wh, metric, labels, values):
    wh.write_points(pd.DataFrame({"metric": metric, "labels": [labels] * len(values),
                                  "ts": TS[:len(values)], "value": values}))


def test_anomaly_rule_flags_the_latest_point_only_when_it_is_anomalous(wh):
    rng = np.random.default_rng(1)
    base = 50 + 5 * np.sin(np.arange(600) / 288 * 2 * np.pi) + rng.normal(0, 0.5, 600)
    spiked = base.copy()
    spiked[-1] = 120.0
    load(wh, "lat", {"svc": "api"}, spiked)
    load(wh, "lat", {"svc": "db"}, base)
    now = (TS[-1] + pd.Timedelta("1s")).to_pydatetime()
    am = AlertManager(wh, clock=lambda: now)
    am.add_rule({"name": "lat_anomaly", "kind": "anomaly", "metric": "lat", "window": "2d"})
    found = am.test("lat_anomaly")
    assert [(lab["svc"], v) for lab, v in zip(found["labels"], found["value"])] == [
        ("api", 120.0)]
    assert [t.to_state for t in am.evaluate("lat_anomaly")] == ["firing"]


def test_forecast_rule_fires_before_the_threshold_is_reached(wh):
    rng = np.random.default_rng(2)
    load(wh, "disk", {"host": "a"}, np.linspace(40, 80, 600) + rng.normal(0, 0.2, 600))
    load(wh, "disk", {"host": "b"}, np.full(600, 40.0) + rng.normal(0, 0.2, 600))
    now = (TS[-1] + pd.Timedelta("1s")).to_pydatetime()
    am = AlertManager(wh, clock=lambda: now)
    rule = {"name": "disk_full", "kind": "forecast", "metric": "disk", "every": "1h",
            "window": "3d", "horizon": "12h", "threshold": 85}
    am.add_rule(rule)
    found = am.test("disk_full")
    assert [lab["host"] for lab in found["labels"]] == ["a"]
    assert 85 < found["value"][0] < 90  # the first forecast step beyond the threshold
    am.add_rule(rule | {"horizon": "1h"})  # too soon to cross
    assert am.test("disk_full").empty
