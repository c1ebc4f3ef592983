"""The same data gives the same answers on DuckDB and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_both_engines


@pytest.fixture(scope="module")
def both(postgres_server, tmp_path_factory):
    pair, _ = load_both_engines(postgres_server, tmp_path_factory, "cross_engine", days=3,
                                seed=11)
    yield pair
    for wh in pair:
        wh.close()


@pytest.mark.storage
@pytest.mark.parametrize("agg", ["mean", "min", "max", "sum", "count", "first", "last",
                                 "p50", "p95", "p99"])
@pytest.mark.parametrize("every", ["1m", "7m", "1h", "1d", "1w"])
def test_buckets_are_identical(both, agg, every):
    duck, pg = (wh.points("host.cpu_percent", every=every, agg=agg) for wh in both)
    assert len(duck) > 0
    pd.testing.assert_frame_equal(duck.drop(columns=["series_id", "labels"]),
                                  pg.drop(columns=["series_id", "labels"]), rtol=1e-9)


@pytest.mark.storage
def test_grouped_and_filled_queries_are_identical(both):
    kwargs = dict(every="1h", agg="p95", by=["recipe"], fill="null",
                  start="2026-11-17T00:00:00Z", end="2026-11-20T00:00:00Z")
    duck, pg = (wh.points("step.duration_ms", **kwargs) for wh in both)
    pd.testing.assert_frame_equal(duck, pg, rtol=1e-9)


@pytest.mark.storage
def test_runs_and_steps_are_identical(both):
    duck, pg = (wh.runs() for wh in both)
    pd.testing.assert_frame_equal(duck, pg, check_dtype=False)
    rid = duck["run_id"].iloc[5]
    pd.testing.assert_frame_equal(both[0].steps(rid), both[1].steps(rid), check_dtype=False)
