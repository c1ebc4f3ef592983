"""Benchmark of ``warehouse.analytics.anomalies``: accuracy on a generated suite and speed.

Run from the repository root::

    python bench/analytics_anomalies.py [--seeds 5] [--quick]

Prints a table and writes ``bench/results/analytics_anomalies.json``.

Accuracy: each generated series has known injected anomalies (events). A flag is a
true positive when it falls inside an event widened by ``TOLERANCE`` samples; an
event is recalled when at least one flag lands on it. Clean series (no injected
anomaly) measure false positives per 10k points. The shapes mimic operational
metrics: daily/weekly seasonality, CPU % with heavy-tailed noise, log-normal
latency, Poisson request counts with outages, level shifts, drift, AR(1)
wandering, and missing samples.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warehouse.analytics.anomalies import anomalies  # noqa: E402

TOLERANCE = 3
SHAPES = ("daily", "weekly", "cpu", "latency", "counts", "level_shift", "drift", "missing",
          "ar1", "lowcount", "burst", "outage", "hourly")
START = pd.Timestamp("2026-01-05", tz="UTC")


def _daily(n: int, per_day: int, phase: float = 0.0) -> np.ndarray:
    t = np.arange(n) / per_day
    return np.sin(2 * np.pi * (t + phase)) + 0.3 * np.sin(4 * np.pi * (t + phase))


def make_series(shape: str, seed: int, clean: bool = False) -> tuple[pd.DataFrame, list]:
    """One generated series and its injected anomaly events [(first, last) sample index].

    ``clean=True`` generates the same shape without injected anomalies (level
    shifts and outages included), to measure false positives.
    """
    rng = np.random.default_rng(seed * 7919 + SHAPES.index(shape))
    step = pd.Timedelta("5min")
    per_day = 288
    n = 4032
    events: list[tuple[int, int]] = []
    noise_sd = 1.0
    if shape in ("daily", "missing"):
        x = 50 + 20 * _daily(n, per_day, rng.uniform()) + rng.normal(0, 2, n)
        noise_sd = 2.0
    elif shape == "weekly":
        step, per_day, n = pd.Timedelta("1h"), 24, 24 * 7 * 6
        day = np.arange(n) // 24
        weekend = (day % 7) >= 5
        x = 100 + 40 * _daily(n, 24) * np.where(weekend, 0.3, 1.0) - 30 * weekend
        x = x + rng.normal(0, 3, n)
        noise_sd = 3.0
    elif shape == "cpu":
        x = 35 + 15 * _daily(n, per_day, rng.uniform()) + 2 * rng.standard_t(5, n)
        x = np.clip(x, 0, 100)
        noise_sd = 3.0
    elif shape == "latency":
        step, per_day, n = pd.Timedelta("1min"), 1440, 6000
        x = 120 * np.exp(0.15 * _daily(n, per_day) + rng.normal(0, 0.25, n))
        noise_sd = 30.0
    elif shape in ("counts", "lowcount"):
        lam = (30 if shape == "counts" else 3) * (1.2 + _daily(n, per_day, rng.uniform()))
        x = rng.poisson(np.maximum(lam, 0.2)).astype(float)
        noise_sd = float(np.sqrt(lam.mean()))
    elif shape == "level_shift":
        n = 3000
        x = 10 + rng.normal(0, 1, n)
        at = int(rng.integers(n // 3, 2 * n // 3))
        if not clean:
            x[at:] += rng.choice([-1, 1]) * rng.uniform(4, 8)
            events.append((at, at))
    elif shape == "burst":  # noise variance triples for a while: a pattern anomaly
        x = 30 + 5 * _daily(n, per_day, rng.uniform()) + rng.normal(0, 1, n)
        if not clean:
            at = int(rng.integers(500, n - 500))
            x[at:at + 30] += rng.normal(0, 4, 30)
            events.append((at, at + 29))
    elif shape == "outage":  # throughput halves for 1-3 hours
        x = 200 + 80 * _daily(n, per_day, rng.uniform()) + rng.normal(0, 8, n)
        noise_sd = 8.0
        if not clean:
            at, w = int(rng.integers(500, n - 500)), int(rng.integers(12, 37))
            x[at:at + w] *= 0.5
            events.append((at, at + w - 1))
    elif shape == "hourly":  # Yahoo-like: hourly, short, trend + daily season
        step, per_day, n = pd.Timedelta("1h"), 24, 1420
        x = (1000 + np.linspace(0, 300, n) + 150 * _daily(n, 24, rng.uniform())
             + rng.normal(0, 25, n))
        noise_sd = 25.0
    elif shape == "drift":
        x = 20 + np.linspace(0, 30, n) + rng.normal(0, 1, n)
    elif shape == "ar1":
        e = rng.normal(0, 1, n)
        x = np.empty(n)
        x[0] = 0
        for i in range(1, n):
            x[i] = 0.8 * x[i - 1] + e[i]
        x = x + 40
        noise_sd = 1.0 / np.sqrt(1 - 0.64)
    else:
        raise ValueError(shape)
    if not clean and shape not in ("burst", "outage"):
        x = _inject(x, rng, shape, noise_sd, events, per_day)
    ts = START + step * np.arange(len(x))
    df = pd.DataFrame({"ts": ts, "value": x})
    if shape == "missing":
        keep = rng.uniform(size=n) > 0.15
        gap = int(rng.integers(100, n - 100))
        keep[gap:gap + 20] = False
        for a, b in events:
            keep[a:b + 1] = True  # anomalies themselves are observed
        df = df[keep]
    return df.reset_index(drop=True), events


def _inject(x, rng, shape, sd, events, per_day) -> np.ndarray:
    """Spikes/dips of 6-12 noise SDs, 1-3 samples wide; outages for counts."""
    x = x.copy()
    n = len(x)
    k = int(rng.integers(3, 6))
    starts = np.sort(rng.choice(np.arange(50, n - 50, 60), size=k, replace=False))
    for a in starts:
        w = int(rng.integers(1, 4))
        if shape in ("counts", "lowcount") and rng.uniform() < 0.4:
            x[a:a + 3 * w] = 0  # outage: nothing counted
            b = a + 3 * w - 1
            if np.mean(x[max(0, a - 10):a]) < 8:
                continue  # an outage at night is invisible: do not count it
        else:
            sign = 1 if shape in ("latency", "cpu", "lowcount") or rng.uniform() < 0.6 else -1
            mag = rng.uniform(6, 12) * sd
            if shape == "latency":
                x[a:a + w] *= rng.uniform(4, 8)
            else:
                x[a:a + w] += sign * mag
            b = a + w - 1
        events.append((int(a), int(b)))
    if shape == "cpu":
        x = np.clip(x, 0, 100)
    if shape in ("counts", "lowcount"):
        x = np.maximum(np.round(x), 0)
    return x


def score_flags(df: pd.DataFrame, events: list, flagged_ts: pd.Series) -> dict:
    """Flag-level precision inputs and event-level recall inputs for one series."""
    start = df["ts"].iloc[0]
    step = (df["ts"].iloc[1] - start) if len(df) > 1 else pd.Timedelta("5min")
    gen_step = pd.Series(df["ts"]).diff().min()
    step = gen_step if pd.notna(gen_step) else step
    idx = np.rint((flagged_ts - start) / step).astype(int).to_numpy()
    hit = np.zeros(len(events), bool)
    tp = 0
    for i in idx:
        ok = False
        for j, (a, b) in enumerate(events):
            if a - TOLERANCE <= i <= b + TOLERANCE:
                hit[j] = ok = True
        tp += ok
    return {"flags": len(idx), "tp": tp, "events": len(events), "hit": int(hit.sum())}


def evaluate(seeds: int = 5, **kwargs) -> dict:
    """Precision/recall per shape over ``seeds`` seeds, plus clean-series false positives."""
    rows = {}
    for shape in SHAPES:
        agg = {"flags": 0, "tp": 0, "events": 0, "hit": 0, "clean_fp": 0, "clean_points": 0}
        for seed in range(seeds):
            df, events = make_series(shape, seed)
            res = anomalies(df, **kwargs)
            for k, v in score_flags(df, events, res["ts"]).items():
                agg[k] += v
            clean, _ = make_series(shape, seed, clean=True)
            agg["clean_fp"] += len(anomalies(clean, **kwargs))
            agg["clean_points"] += len(clean)
        agg["precision"] = agg["tp"] / agg["flags"] if agg["flags"] else 1.0
        agg["recall"] = agg["hit"] / agg["events"] if agg["events"] else 1.0
        agg["clean_fp_per_10k"] = 1e4 * agg["clean_fp"] / agg["clean_points"]
        rows[shape] = agg
    tot = {k: sum(r[k] for r in rows.values()) for k in ("flags", "tp", "events", "hit",
                                                          "clean_fp", "clean_points")}
    tot["precision"] = tot["tp"] / tot["flags"] if tot["flags"] else 1.0
    tot["recall"] = tot["hit"] / tot["events"]
    tot["clean_fp_per_10k"] = 1e4 * tot["clean_fp"] / tot["clean_points"]
    p, r = tot["precision"], tot["recall"]
    tot["f1"] = 2 * p * r / (p + r) if p + r else 0.0
    rows["ALL"] = tot
    return rows


def _timing_frames() -> dict[str, pd.DataFrame]:
    """100 series x 10k points (5-minute: STL path; 1-minute: median-profile path, the
    daily period of 1440 samples being past the STL limit) and one 1M-point series."""
    rng = np.random.default_rng(0)
    frames = {}
    n, k = 10_000, 100
    t = np.arange(n)
    for name, minutes in (("100x10k 5-min", 5), ("100x10k 1-min", 1)):
        per_day = 1440 // minutes
        parts = []
        for i in range(k):
            x = 50 + 10 * np.sin(2 * np.pi * t / per_day + i) + rng.normal(0, 1, n)
            x[rng.choice(n, 5, replace=False)] += 12
            parts.append(pd.DataFrame({"key": f"s{i:03d}", "value": x,
                                       "ts": START + pd.to_timedelta(t * minutes, "min")}))
        frames[name] = pd.concat(parts, ignore_index=True)
    n = 1_000_000
    t = np.arange(n)
    x = 50 + 10 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 1, n)
    x[rng.choice(n, 100, replace=False)] += 12
    frames["1x1M 1-min"] = pd.DataFrame({"ts": START + pd.to_timedelta(t, "min"), "value": x})
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="accuracy only, no 1M timing")
    args = ap.parse_args(argv)
    result: dict = {"python": platform.python_version(), "seeds": args.seeds,
                    "tolerance_samples": TOLERANCE}
    configs = {"combined": {}, "robust": {"methods": ("robust",)},
               "isolation_forest": {"methods": ("isolation_forest",)},
               # the record detector (issue 16), both modes: measured on NAB in bench/nab.py
               "record": {"methods": ("record",)}, "streaming": {"mode": "streaming"}}
    result["accuracy"] = {name: evaluate(args.seeds, **kw) for name, kw in configs.items()}
    print(f"{'config':<17}{'shape':<13}{'prec':>6}{'recall':>8}{'flags':>7}{'events':>7}"
          f"{'fp/10k clean':>14}")
    for name, rows in result["accuracy"].items():
        for shape, r in rows.items():
            print(f"{name:<17}{shape:<13}{r['precision']:>6.2f}{r['recall']:>8.2f}"
                  f"{r['flags']:>7}{r['events']:>7}{r['clean_fp_per_10k']:>14.2f}")
        print(f"{name:<17}{'F1':<13}{rows['ALL']['f1']:>6.3f}")
    if not args.quick:
        result["timing_s"] = {}
        result["load_average_before"] = os.getloadavg()
        frames = _timing_frames()
        for name, frame, kw in (
                ("100x10k 5-min", frames["100x10k 5-min"], {}),
                ("100x10k 1-min", frames["100x10k 1-min"], {}),
                ("100x10k 5-min n_jobs=2", frames["100x10k 5-min"], {"n_jobs": 2}),
                ("1x1M 1-min", frames["1x1M 1-min"], {})):
            t0, c0 = time.perf_counter(), time.process_time()
            res = anomalies(frame, **kw)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            result["timing_s"][name] = {"points": len(frame), "seconds": round(wall, 2),
                                        "main_process_cpu_s": round(cpu, 2),
                                        "flagged": len(res)}
            print(f"timing {name:<24} {len(frame):>9} points {wall:7.2f} s wall "
                  f"({cpu:.2f} s CPU in this process)  {len(res)} flagged")
        result["load_average_after"] = os.getloadavg()
    out = Path(__file__).resolve().parent / "results" / "analytics_anomalies.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
