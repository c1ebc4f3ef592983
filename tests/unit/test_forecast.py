"""Forecasts, seasonality detection and backtests on generated series with known answers.

No timing assertions (the machine is shared and noisy): speed is measured by
``bench/analytics_forecast.py``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from warehouse.analytics.forecast import backtest, detect_seasonality, forecast, forecast_many

START = pd.Timestamp("2025-01-06", tz="UTC")  # a Monday


def frame(values: np.ndarray, freq: str = "1h", start: pd.Timestamp = START) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range(start, periods=len(values), freq=freq),
                         "value": values})


def ets_seasonal(seed: int, n: int, period: int = 24) -> np.ndarray:
    """Simulate ETS(A,N,A): level and season both wander (alpha 0.2, gamma 0.05)."""
    rng = np.random.default_rng(seed)
    season = 3 * np.sin(2 * np.pi * np.arange(period) / period)
    level, out = 50.0, np.empty(n)
    for t in range(n):
        e = rng.normal()
        out[t] = level + season[t % period] + e
        level += 0.2 * e
        season[t % period] += 0.05 * e
    return out


def test_daily_season_on_hourly_data() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(24 * 21)
    s = detect_seasonality(frame(10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, len(t))))
    assert s["step"] == pd.Timedelta("1h")
    assert (s["season"], s["period"]) == ("daily", 24)
    assert s["strength"] > 0.5


def test_weekly_season_on_daily_data() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(7 * 30)
    values = 100 - 30 * (t % 7 >= 5) + rng.normal(0, 5, len(t))  # quiet weekends
    s = detect_seasonality(frame(values, "1D"))
    assert (s["season"], s["period"]) == ("weekly", 7)


def test_weekday_pattern_on_hourly_data_is_weekly() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(24 * 7 * 6)
    busy = ((t // 24) % 7 < 5) * np.sin(2 * np.pi * t / 24)  # daily cycle on weekdays only
    s = detect_seasonality(frame(20 + 5 * busy + rng.normal(0, 1, len(t))))
    assert (s["season"], s["period"]) == ("weekly", 168)


@pytest.mark.parametrize("seed", range(5))
def test_white_noise_has_no_season(seed: int) -> None:
    s = detect_seasonality(frame(np.random.default_rng(seed).normal(size=24 * 30)))
    assert (s["season"], s["period"]) == ("none", None)
    assert s["strength"] < 0.1


def test_detect_accepts_a_series() -> None:
    s = pd.Series(np.tile([1.0, 5.0, 2.0, 8.0], 30),
                  index=pd.date_range(START, periods=120, freq="6h"))
    assert detect_seasonality(s)["period"] == 4


def test_interval_coverage_on_a_known_ets_process() -> None:
    # averaged over seeds; 40 seeds measured 0.79 / 0.95 (docs/analytics.md)
    n, h = 480, 24
    inside80, inside95 = [], []
    for seed in range(10):
        y = ets_seasonal(seed, n + h)
        fc = forecast(frame(y[:n]), h)
        future = y[n:]
        inside80.append(np.mean((future >= fc["lo_80"]) & (future <= fc["hi_80"])))
        inside95.append(np.mean((future >= fc["lo_95"]) & (future <= fc["hi_95"])))
        assert "[24" in fc["model"].iloc[0]  # a daily-seasonal model, chosen by validation
    assert 0.85 <= np.mean(inside95) <= 0.99
    assert 0.68 <= np.mean(inside80) <= 0.92


def test_forecast_columns_and_timestamps() -> None:
    y = ets_seasonal(0, 240)
    fc = forecast(frame(y), 12, levels=(0.5, 0.99))
    assert list(fc.columns) == ["ts", "forecast", "lo_50", "hi_50", "lo_99", "hi_99", "model"]
    expected = pd.date_range(START + pd.Timedelta(hours=240), periods=12, freq="1h")
    assert (fc["ts"] == expected).all()
    assert (fc["lo_99"] <= fc["lo_50"]).all() and (fc["lo_50"] <= fc["forecast"]).all()
    assert (fc["forecast"] <= fc["hi_50"]).all() and (fc["hi_50"] <= fc["hi_99"]).all()


def test_backtest_beats_seasonal_naive_on_a_seasonal_series() -> None:
    # deterministic season + iid noise: a seasonal-naive error is the difference of
    # two noises (sd * sqrt 2), a good model's about one noise, so MASE ~ 0.7
    rng = np.random.default_rng(0)
    t = np.arange(24 * 30)
    y = 100 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, len(t))
    bt = backtest(frame(y), 24, folds=3)
    assert list(bt["fold"]) == [1, 2, 3, "overall"]
    assert (bt["n_train"].iloc[:3] == [24 * 27, 24 * 28, 24 * 29]).all()
    overall = bt.iloc[-1]
    assert overall["mase"] < 1.0
    assert overall["mase"] <= overall["snaive_mase"]
    assert 0.8 <= overall["coverage_95"] <= 1.0
    assert {"smape", "coverage_80", "snaive_smape", "snaive_coverage_95"} <= set(bt.columns)
    assert (bt["period"].iloc[:3] == 24).all()


def test_backtest_rejects_too_short_a_series() -> None:
    with pytest.raises(ValueError, match="folds"):
        backtest(frame(np.arange(10.0)), 5, folds=3)


def test_short_series_gives_a_mean_forecast_with_wide_intervals() -> None:
    fc = forecast(frame(np.array([3.0, 5.0, 4.0, 6.0, 5.0])), 3)
    assert len(fc) == 3 and (fc["model"] == "mean").all()
    assert np.allclose(fc["forecast"], 4.6)
    assert np.isfinite(fc[["lo_95", "hi_95"]].to_numpy()).all()
    assert (fc["lo_95"] < fc["lo_80"]).all() and (fc["hi_80"] < fc["hi_95"]).all()


def test_constant_series_gives_a_flat_forecast() -> None:
    fc = forecast(frame(np.full(200, 7.5)), 10)
    assert (fc["model"] == "constant").all()
    for col in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):
        assert np.allclose(fc[col], 7.5)


def test_irregular_gappy_series_is_regularised() -> None:
    rng = np.random.default_rng(4)
    n = 24 * 20
    jitter = pd.to_timedelta(rng.uniform(-240, 240, n), unit="s")
    ts = pd.date_range(START, periods=n, freq="1h") + jitter
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 1, n)
    keep = np.ones(n, dtype=bool)
    keep[[50, 51, 52, 200]] = False  # short gaps are interpolated
    df = pd.DataFrame({"ts": ts[keep], "value": y[keep]})
    df = pd.concat([df, df.iloc[[10, 11]]]).sample(frac=1, random_state=0)  # dupes, shuffled
    fc = forecast(df, 24)
    assert fc["ts"].diff().dropna().eq(pd.Timedelta("1h")).all()
    assert fc["ts"].iloc[0] > df["ts"].max()
    assert fc["model"].iloc[0].endswith("[24]")
    assert np.isfinite(fc.drop(columns=["ts", "model"]).to_numpy()).all()
    # the cycle is carried on: forecast within the observed range
    assert fc["forecast"].between(35, 65).all()


def test_long_gap_cuts_the_history() -> None:
    y = np.r_[np.full(100, 1000.0), 10 + np.random.default_rng(5).normal(0, 1, 200)]
    ts = pd.date_range(START, periods=300, freq="1h")
    ts = ts.where(np.arange(300) < 100, ts + pd.Timedelta(days=5))  # 5-day hole
    fc = forecast(pd.DataFrame({"ts": ts, "value": y}), 5)
    assert fc["forecast"].between(5, 15).all()  # nothing from before the hole


def test_one_point_needs_a_frequency() -> None:
    one = frame(np.array([2.0]))
    with pytest.raises(ValueError, match="freq"):
        forecast(one, 2)
    fc = forecast(one, 2, freq="15min")
    assert fc["ts"].iloc[1] - fc["ts"].iloc[0] == pd.Timedelta("15min")
    assert np.allclose(fc["forecast"], 2.0)


def test_nonnegative_history_clips_the_bounds() -> None:
    rng = np.random.default_rng(6)
    y = np.abs(rng.normal(0.2, 1.0, 300))  # durations close to zero
    fc = forecast(frame(y), 24)
    assert (fc[["forecast", "lo_80", "lo_95"]] >= 0).all().all()
    unclipped = forecast(frame(y), 24, nonnegative=False)
    assert (unclipped["lo_95"] < 0).any()


def test_season_can_be_forced() -> None:
    y = ets_seasonal(1, 300)
    assert forecast(frame(y), 5, season="none")["model"].iloc[0] in ("ETS(A,N,N)",
                                                                   "ETS(A,Ad,N)")
    assert forecast(frame(y), 5, season=12)["model"].iloc[0].endswith("[12]")


def test_long_period_uses_stl() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(288 * 4)  # 5-minute samples, 4 days
    y = 10 + 4 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, len(t))
    fc = forecast(frame(y, "5min"), 288)
    assert fc["model"].iloc[0].startswith("STL[288]+ETS")
    expected = 10 + 4 * np.sin(2 * np.pi * (len(t) + np.arange(288)) / 288)
    assert np.mean(np.abs(fc["forecast"] - expected)) < 1.0


def test_forecast_many_keeps_order_and_skips_failures() -> None:
    frames = {f"s{i}": frame(ets_seasonal(i, 200)) for i in range(3)}
    frames["empty"] = frame(np.array([np.nan, np.nan]))
    with pytest.warns(RuntimeWarning, match="empty"):
        out = forecast_many(frames, 6, n_jobs=1)
    assert list(out.columns[:3]) == ["key", "ts", "forecast"]
    assert list(dict.fromkeys(out["key"])) == ["s0", "s1", "s2"]
    assert (out.groupby("key").size() == 6).all()


@pytest.mark.slow  # ~3 s: two worker processes import statsmodels
def test_forecast_many_in_parallel_equals_serial() -> None:
    frames = {f"s{i}": frame(ets_seasonal(i, 200)) for i in range(5)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel = forecast_many(frames, 6, n_jobs=2)
    pd.testing.assert_frame_equal(parallel, forecast_many(frames, 6, n_jobs=1))


def _multi_seasonal(seed: int, days: int = 28) -> pd.DataFrame:
    """5-minute counts with a daily cycle, quiet weekends, level wander and spikes."""
    rng = np.random.default_rng(seed)
    n = 288 * days
    t = np.arange(n)
    weekend = ((t // 288) % 7) >= 5
    level = 50 + np.cumsum(rng.normal(0, 0.05, n))
    y = level * (1 + 0.6 * np.sin(2 * np.pi * t / 288)) * np.where(weekend, 0.5, 1.0)
    y = rng.poisson(np.maximum(y, 0.1)).astype(float)
    y[rng.choice(n, 20, replace=False)] *= 4  # bursts, as in real counts
    return frame(y, "5min")


@pytest.mark.parametrize("seed", range(2))
def test_never_worse_than_seasonal_naive_on_a_multi_seasonal_series(seed) -> None:
    df = _multi_seasonal(seed)
    y = df["value"].to_numpy()
    h, errs, naive = 288, [], []
    for end in (len(y) - 2 * h, len(y) - h):
        fc = forecast(df.iloc[:end], h)
        errs.append(np.mean(np.abs(y[end:end + h] - fc["forecast"])))
        naive.append(np.mean(np.abs(y[end:end + h] - y[end - h:end])))
    assert np.mean(errs) <= 1.0 * np.mean(naive)
    # the model alone is the comparison: the choice must not make things worse
    alone = [np.mean(np.abs(y[e:e + h] - forecast(df.iloc[:e], h, select=False)["forecast"]))
             for e in (len(y) - 2 * h, len(y) - h)]
    assert np.mean(errs) <= 1.05 * np.mean(alone)


def test_calibrated_intervals_cover_on_generated_counts() -> None:
    inside95, inside80 = [], []
    for seed in range(4):
        df = _multi_seasonal(seed + 10, days=21)
        y = df["value"].to_numpy()
        end = len(y) - 288
        fc = forecast(df.iloc[:end], 288)
        future = y[end:]
        inside95.append(np.mean((future >= fc["lo_95"]) & (future <= fc["hi_95"])))
        inside80.append(np.mean((future >= fc["lo_80"]) & (future <= fc["hi_80"])))
    assert 0.88 <= np.mean(inside95) <= 0.99
    assert 0.7 <= np.mean(inside80) <= 0.9


def test_a_gain_within_the_noise_of_the_windows_goes_to_seasonal_naive() -> None:
    from warehouse.analytics.forecast_select import _prefer_robust

    naive = np.array([10.0, 12.0, 9.0, 11.0])
    # 5% better on average, but only thanks to one window: within the noise
    lucky = {"SNaive[24]": naive, "SMedian[24]x7": np.array([4.0, 12.5, 9.5, 11.5])}
    assert _prefer_robust("SMedian[24]x7", lucky) == "SNaive[24]"
    # better on every window by a similar margin: a real gain
    steady = {"SNaive[24]": naive, "SMedian[24]x7": naive - 1.5}
    assert _prefer_robust("SMedian[24]x7", steady) == "SMedian[24]x7"
    # a single candidate must beat the combination clearly, too
    combo = {**steady, "combo": naive - 1.4}
    assert _prefer_robust("SMedian[24]x7", combo) == "combo"


@pytest.mark.parametrize("seed", range(3))
def test_seasonal_random_walk_falls_back_to_seasonal_naive(seed) -> None:
    # each day is yesterday plus noise: "same time yesterday" is the optimal forecast,
    # and medians/means of older days or a smoothed model can only lose to it
    rng = np.random.default_rng(seed)
    n, p = 24 * 40, 24
    y = np.empty(n)
    y[:p] = 100 + 20 * np.sin(2 * np.pi * np.arange(p) / p)
    for t in range(p, n):
        y[t] = y[t - p] + rng.normal(0, 3)
    fc = forecast(frame(y), p)
    assert fc["model"].iloc[0] == f"SNaive[{p}]"
    assert np.allclose(fc["forecast"], y[-p:])


def test_interpolated_slots_are_neither_chosen_on_nor_calibrated_on() -> None:
    from warehouse.analytics import forecast_select as fs

    rng = np.random.default_rng(7)
    n, p = 24 * 30, 24
    t = np.arange(n)
    clean = 50 + 10 * np.sin(2 * np.pi * t / p) + rng.normal(0, 1, n)
    observed = (t % p) < 12  # night slots never hold a sample ...
    y = np.where(observed, clean, clean + rng.normal(0, 200, n))  # ... and are garbage

    def model(train: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, str]:
        return np.full(h, train[-1]), np.ones(h), "last"

    def widths(mask: np.ndarray | None) -> np.ndarray:
        cands = fs.candidates(n - 4 * p, p, p, None, model)
        mean, bounds, _ = fs.choose(y, p, cands, 4, (0.95,), interval_folds=7,
                                    observed=mask)
        return (bounds["hi_95"] - bounds["lo_95"])[:12]  # over the daytime slots

    # calibrated on the observed slots: about +-2 noise sd (plus the median's error)
    assert np.median(widths(observed)) < 12
    assert np.median(widths(None)) > 50  # the garbage would have set the width


def test_regularise_marks_the_slots_that_held_a_sample() -> None:
    from warehouse.analytics.forecast_grid import regularise_observed, to_series

    ts = pd.date_range(START, periods=10, freq="1h").delete([3, 4, 7])
    grid, step, observed = regularise_observed(
        to_series(pd.DataFrame({"ts": ts, "value": np.arange(7.0)})), None)
    assert step == pd.Timedelta("1h") and len(grid) == 10
    assert observed.tolist() == [True, True, True, False, False, True, True, False, True,
                                 True]
    assert grid.iloc[3] == pytest.approx(2 + 1 / 3)  # interpolated, but not observed


def test_backtest_scores_only_observed_slots() -> None:
    rng = np.random.default_rng(8)
    n = 24 * 30
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.01, n)
    peak = n - 24 + 3 + np.arange(6)  # six hours around a peak of the last test day
    df = frame(y).drop(index=peak)
    bt = backtest(df, 24, folds=1)
    # the interpolated chord misses the peak by several units (~500 MASE); the
    # forecast misses the observed hours by about the noise
    assert bt["mase"].iloc[0] < 5
    assert bt["snaive_mase"].iloc[0] < 5


def test_intervals_of_sparse_counts_stay_on_the_scale_of_the_data() -> None:
    # 5-minute counts that are 0 most of the time: the typical forecast is 0, and
    # errors taken relative to it once blew the upper bound up to ~1e12
    rng = np.random.default_rng(11)
    n = 288 * 28
    t = np.arange(n)
    rate = 0.1 + 1.2 * np.clip(np.sin(2 * np.pi * t / 288), 0, None)
    y = rng.poisson(rate).astype(float)
    fc = forecast(frame(y, "5min"), 288)
    assert fc["hi_95"].max() <= 3 * y.max()
    future = rng.poisson(rate[:288])  # the next day, same phases
    inside = np.mean((future >= fc["lo_95"]) & (future <= fc["hi_95"]))
    assert inside >= 0.85


def test_calibrated_intervals_follow_skewed_errors() -> None:
    # bursts go up, never down: the upper bound sits farther from the forecast than
    # the lower one (a symmetric interval would be as wide below as above)
    rng = np.random.default_rng(12)
    n = 24 * 60
    t = np.arange(n)
    y = 100 + 20 * np.sin(2 * np.pi * t / 24) + rng.exponential(5, n)
    fc = forecast(frame(y), 24)
    above = (fc["hi_95"] - fc["forecast"]).mean()
    below = (fc["forecast"] - fc["lo_95"]).mean()
    assert above > 1.5 * below
    assert (fc["lo_95"] <= fc["forecast"]).all() and (fc["forecast"] <= fc["hi_95"]).all()


def test_a_winner_of_the_last_windows_that_loses_over_the_longer_record_falls_back() -> None:
    from warehouse.analytics import forecast_select as fs

    rng = np.random.default_rng(13)
    n, p, folds = 24 * 40, 24, 4
    y = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / p) + rng.normal(0, 1, n)
    recent = n - folds * p

    def lucky(train: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, str]:
        # exact on the selection windows (it peeks), far off on every older window
        end = len(train)
        if end >= recent:
            return y[end:end + h].copy() if end + h <= n else np.full(h, 50.0), \
                np.ones(h), "lucky"
        return y[end:end + h] + 30, np.ones(h), "lucky"

    cands = {"model": lucky, "SNaive[24]": fs._snaive(p)}
    _, _, name = fs.choose(y, p, cands, folds, (0.95,), interval_folds=7)
    assert name == "SNaive[24]"
    # with no older window to contradict it, the winner of the last windows stays
    cands = {"model": lucky, "SNaive[24]": fs._snaive(p)}
    _, _, name = fs.choose(y, p, cands, folds, (0.95,), interval_folds=folds)
    assert name == "lucky"


def test_intervals_widen_after_a_volatile_week_and_narrow_after_a_calm_one() -> None:
    from warehouse.analytics.forecast_intervals import PastWindows, calibrated_bounds

    rng = np.random.default_rng(14)
    h, calm, wild = 24, rng.normal(0, 1, (20, 24)), rng.normal(0, 3, (8, 24))

    def width(errors: np.ndarray) -> float:
        past = PastWindows(errors, np.zeros_like(errors), np.ones_like(errors))
        b = calibrated_bounds(np.zeros(h), np.ones(h), past, (0.95,), analytic_ok=False,
                              nonnegative=False)
        return float(np.mean(b["hi_95"] - b["lo_95"]))

    # the same errors in another order: the newest windows set the regime
    assert width(np.vstack([calm, wild])) > 1.3 * width(np.vstack([wild, calm]))
