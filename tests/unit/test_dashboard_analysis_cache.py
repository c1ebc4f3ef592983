"""The analysis cache: a digest that changes with any value, type or row order; a bounded
least-recently-used store that hands out copies."""

from __future__ import annotations

import uuid

import pandas as pd

from warehouse.dashboards.analysis_cache import AnalysisCache, data_version


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range("2026-11-01", periods=3, freq="h", tz="UTC"),
                         "value": [1.0, 2.0, None], "params": [{"a": 1}, {}, {"b": [1]}],
                         "depends_on": [[], ["x"], ["x", "y"]],
                         "run_id": [uuid.UUID(int=i) for i in range(3)]})


def test_data_version_follows_the_data():
    base = data_version(_frame())
    assert data_version(_frame()) == base
    changed = _frame()
    changed.loc[1, "value"] = 2.000001
    assert data_version(changed) != base
    assert data_version(_frame().iloc[::-1]) != base
    assert data_version(_frame().assign(value=lambda f: f["value"].astype("float32"))) != base
    assert data_version(_frame(), None) != base
    nested = _frame()
    nested.at[2, "params"] = {"b": [2]}
    assert data_version(nested) != base


def test_cache_computes_once_and_hands_out_copies():
    cache = AnalysisCache(max_entries=2)
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"x": [1, 2]})

    first = cache.get_or_compute("k", compute)
    first.loc[0, "x"] = 99
    second = cache.get_or_compute("k", compute)
    assert len(calls) == 1 and second["x"].tolist() == [1, 2]
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_keeps_the_most_recently_used():
    cache = AnalysisCache(max_entries=2)
    for key in ("a", "b"):
        cache.get_or_compute(key, lambda key=key: pd.DataFrame({"k": [key]}))
    cache.get_or_compute("a", lambda: pd.DataFrame())  # a is now the most recent
    cache.get_or_compute("c", lambda: pd.DataFrame({"k": ["c"]}))
    assert len(cache) == 2
    assert cache.get_or_compute("a", lambda: pd.DataFrame({"k": ["new"]}))["k"].tolist() == ["a"]
    assert cache.get_or_compute("b", lambda: pd.DataFrame({"k": ["new"]}))["k"].tolist() == ["new"]
