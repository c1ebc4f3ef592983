"""Comparisons of two groups of runs: tests and effect sizes on known distributions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.analytics.compare import (
    _PERM_ROUNDS,
    _permuted_p95_diffs,
    _shuffled_p95_diffs,
    _sorted_p95,
    cliffs_delta,
    compare,
)

COLUMNS = ["metric", "a", "b", "diff", "rel_diff", "test", "p_value", "effect_size",
           "effect_label", "significant", "note"]


def _runs(n: int, median_s: float, fail: float, rng, prefix: str = "r") -> pd.DataFrame:
    status = np.where(rng.uniform(size=n) < fail, "failed", "succeeded")
    dur = np.exp(rng.normal(np.log(median_s), 0.5, n)) * 1e6
    return pd.DataFrame({"run_id": [f"{prefix}{i}" for i in range(n)],
                         "duration_us": dur.astype("int64"), "status": status})


def test_clearly_different_groups_are_significant_with_large_effects():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        out = compare(_runs(60, 10, 0.05, rng), _runs(60, 25, 0.5, rng)).set_index("metric")
        assert list(out.reset_index().columns) == COLUMNS
        for metric in ("duration_p50_s", "duration_mean_s"):
            assert out.loc[metric, "significant"], (seed, metric)
            assert out.loc[metric, "effect_label"] == "large", (seed, metric)
            assert out.loc[metric, "effect_size"] > 0 and out.loc[metric, "diff"] > 0
        assert out.loc["failure_rate", "significant"]
        assert out.loc["failure_rate", "effect_label"] in {"medium", "large"}


def test_identical_distributions_are_rarely_significant():
    significant = 0
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        out = compare(_runs(40, 10, 0.1, rng), _runs(40, 10, 0.1, rng)).set_index("metric")
        significant += bool(out.loc["duration_p50_s", "significant"])
        assert out.loc["duration_p50_s", "effect_label"] in {"negligible", "small", "medium"}
    assert significant <= 2  # 5% expected by chance


def test_small_and_empty_samples_give_nan_p_values_with_a_note():
    rng = np.random.default_rng(1)
    out = compare(_runs(2, 10, 0, rng), _runs(0, 10, 0, rng)).set_index("metric")
    assert out.loc["runs", "a"] == 2 and out.loc["runs", "b"] == 0
    for metric in ("failure_rate", "duration_p50_s", "duration_mean_s", "duration_p95_s"):
        assert np.isnan(out.loc[metric, "p_value"]) and not out.loc[metric, "significant"]
        assert "too few runs" in out.loc[metric, "note"]


def test_labels_name_the_columns_and_steps_are_compared():
    rng = np.random.default_rng(2)
    a, b = _runs(30, 10, 0, rng, "a"), _runs(30, 10, 0, rng, "b")

    def steps(runs, slow):
        return pd.DataFrame({"run_id": np.repeat(runs["run_id"].to_numpy(), 2),
                             "step": ["extract", "load"] * len(runs),
                             "duration_us": np.tile([1e6, 1e6 + slow], len(runs))
                             + rng.integers(0, 2e5, 2 * len(runs))})

    out = compare(a, b, labels=("before", "after"), a_steps=steps(a, 0), b_steps=steps(b, 3e6))
    assert {"before", "after"} <= set(out.columns) and "a" not in out.columns
    rows = out.set_index("metric")
    assert rows.loc["step:load mean_s", "significant"]
    assert rows.loc["step:load mean_s", "effect_label"] == "large"
    assert not rows.loc["step:extract mean_s", "significant"]


def test_running_runs_are_ignored_and_cliffs_delta_has_the_right_sign():
    rng = np.random.default_rng(3)
    a = _runs(20, 10, 0, rng)
    a.loc[:4, "status"] = "running"
    out = compare(a, _runs(20, 10, 0, rng)).set_index("metric")
    assert out.loc["runs", "a"] == 15
    assert cliffs_delta(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert cliffs_delta(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == -1.0


def test_p95_permutations_follow_the_shuffled_distribution():
    # the urn walk must draw the same null distribution as shuffling the whole sample
    rng = np.random.default_rng(7)
    pooled = rng.lognormal(0, 1, 90)
    walked = np.sort(_permuted_p95_diffs(pooled, 40, np.random.default_rng(1)))
    shuffled = np.sort(_shuffled_p95_diffs(pooled, 40, np.random.default_rng(2)))
    assert len(walked) == len(shuffled) == _PERM_ROUNDS
    # two samples of 2,000 from one distribution: quantiles agree within a few % of range
    spread = shuffled[-1] - shuffled[0]
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert abs(np.quantile(walked, q) - np.quantile(shuffled, q)) < 0.08 * spread, q
    for n in (3, 4, 40, 61):
        x = np.sort(rng.normal(size=n))
        assert _sorted_p95(x) == pytest.approx(np.percentile(x, 95), abs=1e-12)


def test_p95_test_with_a_tiny_side_against_many_runs():
    rng = np.random.default_rng(4)
    out = compare(_runs(3, 10, 0, rng), _runs(30_000, 10, 0, rng, "b")).set_index("metric")
    assert 0 < out.loc["duration_p95_s", "p_value"] <= 1
    fast = compare(_runs(3, 10, 0, rng), _runs(300, 60, 0, rng, "b")).set_index("metric")
    assert fast.loc["duration_p95_s", "p_value"] < 0.05
