"""Trends (slope CI, direction) and change points on generated series with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.analytics.trends import _SegmentCost, change_points, trends

START = pd.Timestamp("2025-01-01", tz="UTC")


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi**2)  # start in the stationary distribution
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def frame(values: np.ndarray, freq: str = "1D", **extra: object) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range(START, periods=len(values), freq=freq),
                         "value": values, **extra})


def many(series: list[np.ndarray], freq: str = "1D") -> pd.DataFrame:
    """Several series in one frame, one key each (one trends() call does them all)."""
    return pd.concat([frame(y, freq, key=i) for i, y in enumerate(series)], ignore_index=True)


def test_slope_ci_covers_the_true_slope_under_ar1_noise() -> None:
    # 0.02 per day over 200 days under AR(1) phi = 0.5; plain OLS + Newey-West
    # covers ~89% here, the prewhitened estimate ~93% (docs/analytics.md)
    rng = np.random.default_rng(0)
    n, slope = 200, 0.02
    out = trends(many([5 + slope * np.arange(n) + ar1(n, 0.5, rng) for _ in range(40)]))
    covered = (out["slope_lo"] <= slope) & (slope <= out["slope_hi"])
    assert covered.mean() >= 0.88
    assert abs(out["slope_per_day"].mean() - slope) < 0.003
    assert (out["direction"] == "increasing").mean() >= 0.9


def test_white_noise_is_flat_in_most_seeds() -> None:
    rng = np.random.default_rng(1)
    out = trends(many([rng.normal(10, 1, 150) for _ in range(40)]))
    assert (out["direction"] == "flat").mean() >= 0.85
    # and has no change point in most seeds either
    assert (out["n_changes"] == 0).mean() >= 0.85


def test_slope_is_per_day_whatever_the_sampling() -> None:
    rng = np.random.default_rng(2)
    n = 24 * 30  # hourly samples, 3 units per day downwards, relative to a mean of ~100
    y = 145 - 3 * np.arange(n) / 24 + rng.normal(0, 1, n)
    row = trends(frame(y, "1h")).iloc[0]
    assert row["direction"] == "decreasing"
    assert row["slope_lo"] <= -3 <= row["slope_hi"]
    assert row["slope_pct_per_day"] == pytest.approx(100 * row["slope_per_day"]
                                                     / abs(row["mean"]))
    assert row["p_value"] < 1e-6 and row["n"] == n


def test_irregular_timestamps() -> None:
    rng = np.random.default_rng(3)
    days = np.sort(rng.uniform(0, 60, 300))
    ts = START + pd.to_timedelta(days, unit="D")
    df = pd.DataFrame({"ts": ts, "value": 2 + 0.5 * days + rng.normal(0, 1, 300)})
    row = trends(df.sample(frac=1, random_state=0)).iloc[0]  # unsorted input
    assert row["slope_lo"] <= 0.5 <= row["slope_hi"]
    assert row["start"] == ts.min() and row["end"] == ts.max()


@pytest.mark.parametrize("seed", range(6))
def test_level_shift_is_found_where_it_was_injected(seed: int) -> None:
    rng = np.random.default_rng(seed)
    at = int(rng.integers(60, 240))
    y = 10 + rng.normal(0, 1, 300)
    y[at:] += 3
    cp = change_points(frame(y, "1h"))
    assert len(cp) == 1
    found = int((cp["ts"].iloc[0] - START) / pd.Timedelta("1h"))
    assert abs(found - at) <= 3
    assert cp["shift"].iloc[0] == pytest.approx(3, abs=0.6)
    assert cp["mean_before"].iloc[0] == pytest.approx(10, abs=0.4)
    assert cp["mean_after"].iloc[0] == pytest.approx(13, abs=0.4)
    assert list(cp.columns) == ["ts", "before", "after", "shift", "mean_before",
                                "mean_after", "slope_before", "slope_after"]


def test_shift_on_top_of_a_trend_is_one_change_not_a_staircase() -> None:
    rng = np.random.default_rng(4)
    n = 2000  # also exercises the strided search + local refinement (n > 300)
    y = 0.003 * np.arange(n) + rng.normal(0, 1, n)
    y[1234:] += 2.5
    cp = change_points(frame(y, "1h"))
    assert len(cp) == 1
    assert abs(int((cp["ts"].iloc[0] - START) / pd.Timedelta("1h")) - 1234) <= 3
    assert cp["shift"].iloc[0] == pytest.approx(2.5, abs=0.4)
    # 0.003 per hour = 0.072 per day on both sides
    assert cp["slope_before"].iloc[0] == pytest.approx(0.072, abs=0.03)
    # the flat-segment model cuts the same trend into steps
    assert len(change_points(frame(y, "1h"), model="mean")) > 1


def test_pure_linear_trend_has_no_change_point() -> None:
    rng = np.random.default_rng(5)
    out = trends(many([0.05 * np.arange(200) + rng.normal(0, 1, 200) for _ in range(10)]))
    assert (out["n_changes"] == 0).mean() >= 0.9


def test_max_changepoints_and_trends_row() -> None:
    rng = np.random.default_rng(6)
    y = np.r_[rng.normal(0, 1, 100), rng.normal(5, 1, 100), rng.normal(-5, 1, 100)]
    assert len(change_points(frame(y))) == 2
    assert len(change_points(frame(y), max_changepoints=1)) == 1
    row = trends(frame(y)).iloc[0]
    assert row["n_changes"] == 2
    assert row["change_points"] == [START + pd.Timedelta(days=100),
                                    START + pd.Timedelta(days=200)]
    assert np.allclose(row["segment_means"], [0, 5, -5], atol=0.4)


def test_one_row_per_key() -> None:
    rng = np.random.default_rng(7)
    df = pd.concat([frame(np.arange(100.0) + rng.normal(0, 1, 100), key="up"),
                    frame(-np.arange(100.0) + rng.normal(0, 1, 100), key="down"),
                    frame(rng.normal(0, 1, 100), key="noise")])
    out = trends(df).set_index("key")
    assert list(out.index) == ["down", "noise", "up"]
    assert out.loc["up", "direction"] == "increasing"
    assert out.loc["down", "direction"] == "decreasing"
    assert out.loc["noise", "direction"] == "flat"
    cp = change_points(df.assign(recipe="etl"), by=["recipe", "key"])
    assert list(cp.columns[:2]) == ["recipe", "key"]


def test_degenerate_series_do_not_crash() -> None:
    const = trends(frame(np.full(50, 3.0))).iloc[0]
    assert const["direction"] == "flat" and const["slope_per_day"] == 0
    assert const["n_changes"] == 0
    two = trends(frame(np.array([1.0, 2.0]))).iloc[0]
    assert two["direction"] == "flat" and np.isnan(two["slope_per_day"])
    line = trends(frame(np.arange(20.0))).iloc[0]  # exact line: zero error
    assert line["direction"] == "increasing" and line["slope_per_day"] == pytest.approx(1)
    with_nan = trends(frame(np.r_[np.arange(30.0), np.nan])).iloc[0]
    assert with_nan["n"] == 30
    empty = trends(frame(np.array([np.nan, np.nan])))
    assert empty.empty and list(empty.columns)[:3] == ["n", "start", "end"]
    assert change_points(frame(np.array([], dtype=float))).empty
    series = pd.Series(np.arange(30.0), index=pd.date_range(START, periods=30, freq="1D"))
    assert trends(series)["direction"].iloc[0] == "increasing"


def test_vectorised_segment_costs_are_the_scalar_ones_bit_for_bit() -> None:
    # the refinement of long series scores positions in bulk; it must pick the same break
    rng = np.random.default_rng(11)
    y = np.round(np.r_[rng.normal(0, 1, 300), rng.normal(4, 1, 300)] + 0.01 * np.arange(600), 1)
    for linear in (True, False):
        cost = _SegmentCost(linear).fit(y)
        ends = np.arange(3, 600)
        bulk = cost.errors(0, ends)
        assert bulk.tolist() == [cost.error(0, int(e)) for e in ends]
        starts = np.arange(0, 597)
        assert cost.errors(starts, 600).tolist() == [cost.error(int(s), 600) for s in starts]
