"""Benchmark of ``warehouse.analytics.forecast`` (speed) and of forecast/trend accuracy.

Run from the repository root::

    python bench/analytics_forecast.py               # speed: 10k-point forecast, 500 series
    python bench/analytics_forecast.py --accuracy    # + coverage / MASE / trend suites
    python bench/analytics_forecast.py --series 100  # fewer series (quick look)

Prints tables and writes ``bench/results/analytics_forecast.json``.

Speed: one 10k-point series per shape (median of 5 warm calls; the first call in a
process also pays ~1-2 s of imports), one month of 1-minute points (43 200, horizons
24, 60 and 1440; median and p95 of 7 calls), then ``forecast_many`` over ``--series``
10k-point series (shapes cycled) on ``--jobs`` worker processes, wall time including
worker start-up. Accuracy: interval coverage of held-out points on processes whose
answer is known, backtest MASE against seasonal naive, the trend CI coverage under
AR(1) noise and change-point detection rates.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, write_results  # noqa: E402

from warehouse.analytics.forecast import backtest, forecast, forecast_many  # noqa: E402
from warehouse.analytics.trends import change_points, trends  # noqa: E402

START = pd.Timestamp("2025-01-06", tz="UTC")
SHAPES = {  # name: (step, generator of n values)
    "hourly_daily": ("1h", lambda t, r: 50 + 10 * np.sin(2 * np.pi * t / 24)
                     + np.cumsum(r.normal(0, 0.05, len(t))) + r.normal(0, 2, len(t))),
    "hourly_weekly": ("1h", lambda t, r: 20 + 5 * np.sin(2 * np.pi * t / 24) * ((t // 24) % 7 < 5)
                      + r.normal(0, 1, len(t))),
    "daily_weekly": ("1D", lambda t, r: 100 - 30 * (t % 7 >= 5) + r.normal(0, 5, len(t))),
    "minute_daily": ("1min", lambda t, r: 10 + 4 * np.sin(2 * np.pi * t / 1440)
                     + r.normal(0, 1, len(t))),
    "random_walk": ("5min", lambda t, r: 100 + np.cumsum(r.normal(0, 1, len(t)))),
}


def make(shape: str, n: int, seed: int) -> pd.DataFrame:
    step, gen = SHAPES[shape]
    values = gen(np.arange(n), np.random.default_rng(seed))
    return pd.DataFrame({"ts": pd.date_range(START, periods=n, freq=step), "value": values})


def bench_single(n: int) -> list[dict]:
    rows = []
    for shape in SHAPES:
        df = make(shape, n, 0)
        model = forecast(df, 48)["model"].iloc[0]  # warm-up (imports)
        times, cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            forecast(df, 48)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append({"case": f"forecast {n} pts", "shape": shape, "model": model,
                     "seconds": statistics.median(times), "max_seconds": max(times),
                     "cpu_seconds": statistics.median(cpu)})
    return rows


def bench_month_minute(runs: int = 7) -> list[dict]:
    """One forecast of 30 days of 1-minute points (daily cycle, quiet weekends): what a
    dashboard panel asks for; median and p95 of ``runs`` warm calls per horizon."""
    rng = np.random.default_rng(0)
    t = np.arange(30 * 1440)
    weekend = ((t // 1440) % 7) >= 5
    y = np.abs(10 + 4 * np.sin(2 * np.pi * t / 1440) * np.where(weekend, 0.5, 1.0)
               + rng.normal(0, 1, len(t)))
    df = pd.DataFrame({"ts": pd.date_range(START, periods=len(t), freq="1min"), "value": y})
    forecast(df, 60)  # warm-up (imports)
    rows = []
    for horizon in (24, 60, 1440):
        times, cpu = [], []
        load_before = os.getloadavg()[0]
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            model = forecast(df, horizon)["model"].iloc[0]
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append({"case": f"forecast 30 d x 1 min, horizon {horizon}", "shape": "minute_month",
                     "model": model, "seconds": statistics.median(times),
                     "p95_seconds": float(np.percentile(times, 95)),
                     "cpu_seconds": statistics.median(cpu), "load_before": load_before,
                     "load_after": os.getloadavg()[0]})
    return rows


def bench_many(n_series: int, n: int, jobs: int) -> dict:
    names = list(SHAPES)
    frames = {i: make(names[i % len(names)], n, i) for i in range(n_series)}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = forecast_many(frames, 48, n_jobs=jobs)
    wall = time.perf_counter() - t0
    # the machine is shared: the 1-min load average says how contended the run was
    return {"case": f"forecast_many {n_series} x {n} pts", "shape": "mixed",
            "model": f"n_jobs={jobs}", "seconds": wall, "max_seconds": wall,
            "series_ok": int(out["key"].nunique()), "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def ets_seasonal(rng: np.random.Generator, n: int, period: int = 24) -> np.ndarray:
    season = 3 * np.sin(2 * np.pi * np.arange(period) / period)
    level, out = 50.0, np.empty(n)
    for i in range(n):
        e = rng.normal()
        out[i] = level + season[i % period] + e
        level += 0.2 * e
        season[i % period] += 0.05 * e
    return out


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


PROCESSES = {  # name: (step, generator)
    "ETS(A,N,A)[24]": ("1h", lambda r, n: ets_seasonal(r, n)),
    "sine24+noise": ("1h", lambda r, n: 20 + 5 * np.sin(2 * np.pi * np.arange(n) / 24)
                     + r.normal(0, 1, n)),
    "trend+sine24": ("1h", lambda r, n: 20 + 0.01 * np.arange(n)
                     + 5 * np.sin(2 * np.pi * np.arange(n) / 24) + r.normal(0, 1, n)),
    "weekday/weekend daily": ("1D", lambda r, n: 10 + 3 * (np.arange(n) % 7 >= 5)
                              + r.normal(0, 1, n)),
    "weekday-only cycle hourly": ("1h", lambda r, n: 20 + 5 * np.sin(
        2 * np.pi * np.arange(n) / 24) * ((np.arange(n) // 24) % 7 < 5) + r.normal(0, 1, n)),
    "local level": ("1h", lambda r, n: 10 + np.cumsum(r.normal(0, 0.3, n)) + r.normal(0, 1, n)),
    "AR(1) 0.7": ("1h", lambda r, n: 5 + ar1(r, n, 0.7)),
}


def bench_accuracy(seeds: int, n: int = 1000, h: int = 48) -> list[dict]:
    rows = []
    for name, (step, gen) in PROCESSES.items():
        c80, c95, mase, snaive, models = [], [], [], [], set()
        for seed in range(seeds):
            y = gen(np.random.default_rng(seed), n + h)
            df = pd.DataFrame({"ts": pd.date_range(START, periods=n + h, freq=step),
                               "value": y})
            fc = forecast(df.iloc[:n], h)
            future = y[n:]
            c80.append(np.mean((future >= fc["lo_80"]) & (future <= fc["hi_80"])))
            c95.append(np.mean((future >= fc["lo_95"]) & (future <= fc["hi_95"])))
            models.add(fc["model"].iloc[0])
            if seed < 10:  # backtests cost folds x fits
                overall = backtest(df, h, folds=3).iloc[-1]
                mase.append(overall["mase"])
                snaive.append(overall["snaive_mase"])
        rows.append({"process": name, "coverage_80": float(np.mean(c80)),
                     "coverage_95": float(np.mean(c95)), "mase": float(np.mean(mase)),
                     "snaive_mase": float(np.mean(snaive)), "models": ",".join(sorted(models))})
    return rows


def bench_trends(seeds: int) -> list[dict]:
    rows = []
    for n in (50, 200, 1000):
        for phi in (0.0, 0.5, 0.8):
            slope = 0.02
            frames, noise, shifted, at = [], [], [], []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                ts = pd.date_range(START, periods=n, freq="1D")
                frames.append(pd.DataFrame({"ts": ts, "value": slope * np.arange(n)
                                            + ar1(rng, n, phi), "key": seed}))
                noise.append(pd.DataFrame({"ts": ts, "value": ar1(rng, n, phi), "key": seed}))
                y = ar1(rng, n, phi)
                k = int(n * 0.6)
                y[k:] += 3 * y.std()
                shifted.append(pd.DataFrame({"ts": ts, "value": y, "key": seed}))
                at.append(ts[k])
            tr = trends(pd.concat(frames), max_changepoints=0)
            flat = trends(pd.concat(noise))
            cp = change_points(pd.concat(shifted))
            hits = sum(len(g) == 1 and abs((g["ts"].iloc[0] - at[key]).days) <= 3
                       for key, g in cp.groupby("key"))
            rows.append({"n": n, "phi": phi,
                         "ci95_coverage": float(((tr.slope_lo <= slope)
                                                 & (slope <= tr.slope_hi)).mean()),
                         "noise_flat": float((flat.direction == "flat").mean()),
                         "noise_false_cp": float((flat.n_changes > 0).mean()),
                         "shift_found_3": hits / seeds})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--accuracy", action="store_true", help="also run the accuracy suites")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed cases")
    ap.add_argument("--seeds", type=int, default=40)
    args = ap.parse_args()

    speed: list[dict] = []
    if not args.no_speed:
        speed = bench_single(args.points) + bench_month_minute()
        if args.series:
            speed.append(bench_many(args.series, args.points, args.jobs))
    print_table(speed, ["case", "shape", "model", "seconds", "max_seconds", "p95_seconds",
                        "cpu_seconds", "load_before", "load_after"])
    extra: dict = {"points": args.points, "series": args.series, "jobs": args.jobs}
    if args.accuracy:
        print()
        extra["forecast_accuracy"] = bench_accuracy(args.seeds)
        print_table(extra["forecast_accuracy"], ["process", "coverage_80", "coverage_95",
                                                 "mase", "snaive_mase", "models"])
        print()
        extra["trend_accuracy"] = bench_trends(args.seeds)
        print_table(extra["trend_accuracy"], ["n", "phi", "ci95_coverage", "noise_flat",
                                              "noise_false_cp", "shift_found_3"])
    path = write_results("analytics_forecast", speed, extra)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
