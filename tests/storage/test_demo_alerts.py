"""The demo's alert rules fire on what the demo injected, on both engines."""

from __future__ import annotations

import pandas as pd

from warehouse import demo


def test_demo_rules_fire_on_the_injected_failures_outliers_and_spikes(wh):
    data = demo.generate(days=30, end=pd.Timestamp("2026-11-20", tz="UTC"), seed=7)
    demo.load(wh, data)
    state = demo.define_alerts(wh, data)
    firing = state[state["state"] == "firing"]
    by_rule = {rule: part for rule, part in firing.groupby("rule")}
    assert set(by_rule) == {"demo_etl_failed", "demo_etl_slow", "demo_cpu_spike"}

    failed = {labels["run_id"] for labels in by_rule["demo_etl_failed"]["labels"]}
    assert failed <= set(data.truth["failed_runs"])
    slow = {labels["run_id"] for labels in by_rule["demo_etl_slow"]["labels"]}
    assert slow <= set(data.truth["outlier_runs"])
    hosts = {labels["host"] for labels in by_rule["demo_cpu_spike"]["labels"]}
    assert hosts <= set(data.truth["cpu_spikes"])
    # Stored: a second look (a restart) sees the same firing instances.
    wh.alerts.reload()
    assert len(wh.alerts.state().query("state == 'firing'")) == len(firing)
