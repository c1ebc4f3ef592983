"""Analytics over data read from each engine, through the CLI as users call it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from warehouse import Warehouse, demo
from warehouse.cli import main

END = pd.Timestamp("2026-11-20", tz="UTC")


@pytest.fixture
def loaded(database_url):
    data = demo.generate(days=12, end=END, seed=3)
    wh = Warehouse(database_url)
    demo.load(wh, data)
    wh.close()
    return database_url, data


def cli(url, *args, result=False):
    """stdout of ``warehouse ARGS... --url URL`` (notes such as "chart: ..." go to stderr)."""
    outcome = CliRunner().invoke(main, [*args, "--url", url], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return outcome if result else outcome.stdout


def test_bottlenecks_rank_the_regressing_step_first(loaded, tmp_path):
    url, _ = loaded
    outcome = cli(url, "bottlenecks", "etl-hourly", "--format", "json",
                  "--plot", str(tmp_path / "b.png"), result=True)
    rows = json.loads(outcome.stdout)
    assert outcome.stderr.strip() == f"chart: {tmp_path / 'b.png'}"
    assert rows[0]["step"] == "transform" and rows[0]["getting_slower"] is True
    # Every step follows the demo's daily/weekly load cycle; only transform regresses.
    others = [r["slope_pct_per_day"] for r in rows[1:]]
    assert rows[0]["slope_pct_per_day"] > 1.5 * max(others)
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_anomalies_find_the_injected_cpu_spikes(loaded):
    url, data = loaded
    out = cli(url, "anomalies", "--metric", "host.cpu_percent", "--every", "5m", "--agg", "max",
              "--format", "csv")
    found = pd.read_csv(__import__("io").StringIO(out), parse_dates=["ts"])
    for host, spike in data.truth["cpu_spikes"].items():
        near = found[(found["key"] == f"host={host}")
                     & ((found["ts"] - spike).abs() <= pd.Timedelta("10min"))]
        assert len(near) >= 1, host
    assert len(found) <= 3 * 3  # a handful of buckets per spike, not noise


def test_streaming_anomalies_find_the_spikes_from_the_past_only(loaded):
    url, data = loaded
    out = cli(url, "anomalies", "--metric", "host.cpu_percent", "--every", "5m", "--agg", "max",
              "--streaming", "--format", "csv")
    found = pd.read_csv(__import__("io").StringIO(out), parse_dates=["ts"])
    for host, spike in data.truth["cpu_spikes"].items():
        near = found[(found["key"] == f"host={host}")
                     & ((found["ts"] - spike).abs() <= pd.Timedelta("10min"))]
        assert len(near) >= 1, host
    assert found["score"].between(0, 1).all()


def test_forecast_trend_and_compare(loaded, tmp_path):
    url, _ = loaded
    rows = json.loads(cli(url, "forecast", "--recipe", "etl-hourly", "--every", "1h",
                          "--horizon", "12", "--format", "json"))
    assert len(rows) == 12
    assert all(r["lo_95"] <= r["lo_80"] <= r["forecast"] <= r["hi_80"] <= r["hi_95"] for r in rows)
    trend = json.loads(cli(url, "trends", "--recipe", "etl-hourly", "--step", "transform",
                           "--format", "json"))
    assert trend[0]["direction"] == "increasing"
    compared = json.loads(cli(url, "compare", "etl-hourly@..2026-11-14T00:00:00Z",
                              "etl-hourly@2026-11-14T00:00:00Z..", "--format", "json"))
    transform = next(r for r in compared if r["metric"] == "step:transform mean_s")
    assert transform["significant"] and transform["diff"] > 0
