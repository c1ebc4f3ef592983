"""Anomaly detection on generated series where the answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.analytics.anomalies import anomalies, detect_period

START = pd.Timestamp("2026-03-02", tz="UTC")
COLUMNS = ["ts", "value", "expected", "score", "is_anomaly", "method", "kind", "reason"]


def _series(shape: str, seed: int, n: int = 2016) -> tuple[pd.DataFrame, float]:
    """A clean series of one shape (5-minute samples unless hourly) and its noise SD."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta("5min")
    t = np.arange(n)
    if shape == "daily":
        x = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 2, n)
        sd = 2.0
    elif shape == "weekly":
        step, n = pd.Timedelta("1h"), 24 * 7 * 5
        t = np.arange(n)
        weekend = (t // 24) % 7 >= 5
        x = (100 + 40 * np.sin(2 * np.pi * t / 24) * np.where(weekend, 0.3, 1) - 30 * weekend
             + rng.normal(0, 3, n))
        sd = 3.0
    elif shape == "counts":
        lam = 30 * (1.2 + np.sin(2 * np.pi * t / 288))
        x = rng.poisson(lam).astype(float)
        sd = float(np.sqrt(lam.mean()))
    elif shape == "ar1":
        e = rng.normal(0, 1, n)
        x = np.empty(n)
        x[0] = 0.0
        for i in range(1, n):
            x[i] = 0.8 * x[i - 1] + e[i]
        x += 40
        sd = 1.0 / np.sqrt(1 - 0.64)
    else:
        raise ValueError(shape)
    return pd.DataFrame({"ts": START + step * np.arange(len(x)), "value": x}), sd


def _inject(df: pd.DataFrame, sd: float, seed: int, k: int = 4) -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(seed + 1000)
    df = df.copy()
    at = np.sort(rng.choice(np.arange(60, len(df) - 60, 97), size=k, replace=False))
    for i, a in enumerate(at):
        sign = 1 if i % 2 == 0 else -1
        df.loc[a, "value"] += sign * rng.uniform(8, 12) * sd
    return df, [int(a) for a in at]


def _match(df: pd.DataFrame, res: pd.DataFrame, truth: list[int], tol: int = 2):
    idx = df.reset_index(drop=True).reset_index().set_index("ts")["index"]
    flagged = idx.loc[res["ts"]].to_numpy()
    tp = sum(any(abs(f - a) <= tol for a in truth) for f in flagged)
    hit = sum(any(abs(f - a) <= tol for f in flagged) for a in truth)
    return tp, len(flagged), hit


@pytest.mark.parametrize("shape", ["daily", "weekly", "counts", "ar1"])
def test_injected_spikes_and_dips_are_found_with_few_false_positives(shape):
    tp = flags = hit = events = 0
    for seed in range(3):
        clean, sd = _series(shape, seed)
        df, truth = _inject(clean, sd, seed)
        res = anomalies(df)
        a, b, c = _match(df, res, truth)
        tp, flags, hit, events = tp + a, flags + b, hit + c, events + len(truth)
    assert hit / events >= 0.8, f"recall {hit}/{events}"
    assert tp / max(flags, 1) >= 0.8, f"precision {tp}/{flags}"


def test_clean_seasonal_noise_yields_almost_no_anomalies():
    flagged = sum(len(anomalies(_series("daily", seed, n=4032)[0])) for seed in range(3))
    assert flagged <= 2


def test_level_shift_is_reported_at_the_change():
    rng = np.random.default_rng(7)
    x = 10 + rng.normal(0, 1, 1500)
    x[900:] += 6
    df = pd.DataFrame({"ts": START + pd.Timedelta("1min") * np.arange(1500), "value": x})
    res = anomalies(df)
    shifts = res[res["kind"] == "level_shift"]
    assert len(shifts) == 1
    pos = int((shifts["ts"].iloc[0] - START) / pd.Timedelta("1min"))
    assert abs(pos - 900) <= 3
    assert shifts["reason"].iloc[0].startswith("level shift: rolling median moved from 10")
    assert len(res) <= 3  # the shift is one event, not a run of spikes


def test_missing_samples_nans_and_duplicates_do_not_crash():
    df, sd = _series("daily", 3, n=3000)
    df, truth = _inject(df, sd, 3)
    rng = np.random.default_rng(3)
    keep = rng.uniform(size=len(df)) > 0.2
    keep[truth] = True
    df = df[keep].copy()
    df.loc[df.sample(50, random_state=1).index, "value"] = np.nan
    df = pd.concat([df, df.iloc[[10, 20]]])  # duplicated timestamps
    res = anomalies(df, only_anomalies=False)
    assert len(res) == len(df)
    assert list(res.columns) == COLUMNS
    assert not res.loc[res["value"].isna(), "is_anomaly"].any()
    assert res["ts"].is_monotonic_increasing
    flagged = res[res["is_anomaly"]]
    assert flagged["ts"].isin(START + pd.Timedelta("5min") * np.array(truth)).sum() >= 3


def test_keys_are_independent_and_columns_documented():
    a, sd = _series("daily", 1)
    a, _ = _inject(a, sd, 1)
    b, _ = _series("ar1", 2)
    both = pd.concat([b.assign(key="b"), a.assign(key="a")])
    res = anomalies(both)
    assert list(res.columns) == ["key", *COLUMNS]
    alone = anomalies(a)
    pd.testing.assert_frame_equal(
        res[res["key"] == "a"].drop(columns="key").reset_index(drop=True), alone)
    assert res["score"].between(0.5, 1).all() and res["is_anomaly"].all()
    assert set(res["method"]) <= {"robust", "isolation_forest", "robust+isolation_forest"}


def test_reason_names_the_baseline_and_season():
    df, sd = _series("daily", 4)
    df.loc[700, "value"] += 10 * sd
    res = anomalies(df)
    row = res[res["ts"] == df.loc[700, "ts"]].iloc[0]
    assert "MADs above the seasonal baseline" in row["reason"]
    assert row["reason"].endswith("(daily season)")
    assert row["kind"] == "spike" and row["expected"] == pytest.approx(
        50 + 20 * np.sin(2 * np.pi * 700 / 288), abs=3)


def test_period_detection_daily_weekly_none():
    daily, _ = _series("daily", 0)
    weekly, _ = _series("weekly", 0)
    noise = np.random.default_rng(0).normal(size=3000)
    assert detect_period(daily["value"].to_numpy(), 300 * 10**9) == (288, "daily")
    assert detect_period(weekly["value"].to_numpy(), 3600 * 10**9) == (168, "weekly")
    assert detect_period(noise, 60 * 10**9) == (0, "none")


def test_short_constant_and_empty_inputs():
    short = pd.DataFrame({"ts": START + pd.Timedelta("1h") * np.arange(5), "value": 1.0})
    assert anomalies(short).empty
    flat = pd.DataFrame({"ts": START + pd.Timedelta("1min") * np.arange(500), "value": 3.0})
    flat.loc[250, "value"] = 4.0
    res = anomalies(flat)
    assert len(res) == 1 and res["value"].iloc[0] == 4.0
    empty = anomalies(pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"),
                                    "value": pd.Series([], dtype=float)}))
    assert empty.empty and list(empty.columns) == COLUMNS


def test_single_methods_and_contamination():
    df, sd = _series("daily", 5)
    df, truth = _inject(df, sd, 5)
    robust = anomalies(df, methods=("robust",))
    assert set(robust["method"]) == {"robust"}
    forest = anomalies(df, methods=("isolation_forest",), contamination=0.01,
                       only_anomalies=False)
    assert forest["is_anomaly"].mean() == pytest.approx(0.01, abs=0.005)
    with pytest.raises(ValueError):
        anomalies(df, methods=("prophet",))
    with pytest.raises(ValueError):
        anomalies(df.rename(columns={"value": "v"}))
