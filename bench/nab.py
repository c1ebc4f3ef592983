"""NAB benchmark of the default streaming anomaly detector.

Run from the repository root (reads ../shared, as benchmarks may)::

    python bench/nab.py [--nab-dir DIR] [--out DIR] [--per-file] [--speed]

Every data file of the NAB development subset is scored the way a user would call
the detector: ``warehouse.analytics.anomalies(frame, mode="streaming",
only_anomalies=False)`` on a DataFrame of ``ts``/``value`` — each score uses only the
points before it. The scores go to ``--out`` (default: a new temporary folder; one
``timestamp,anomaly_score`` CSV per file, NAB's layout) and are scored with
``../shared/tools/nab_score.py`` for the standard, low-FP and low-FN profiles: swept
(one corpus-wide threshold, as NAB reports) and at the detector's own default
threshold (0.5). Also per category, and leave-one-category-out: the threshold is
swept on four categories and applied to the fifth (``--loco``: the parameters too).
``--speed`` adds the streaming
throughput (one series, in one call, in 1,000-point and in single-point updates) and
streaming and retrospective runs over 1M points. Writes ``bench/results/nab.json``.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table, write_results  # noqa: E402
from warehouse import analytics  # noqa: E402
from warehouse.analytics.streaming import DEFAULT_THRESHOLD, StreamingDetector  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCES = {"windowed Gaussian": 51.5, "Numenta HTM": 72.8, "null": 0.0}


def _scorer(path: Path):
    spec = importlib.util.spec_from_file_location("nab_score", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def score_files(corpus: dict[str, pd.DataFrame], out: Path) -> tuple[dict, float]:
    """Streaming scores per file through the public API; CSVs written to ``out``."""
    scores, seconds = {}, 0.0
    for name, df in corpus.items():
        frame = pd.DataFrame({"ts": df["timestamp"], "value": df["value"].astype(float)})
        t0 = time.perf_counter()
        res = analytics.anomalies(frame, mode="streaming", only_anomalies=False)
        seconds += time.perf_counter() - t0
        s = res["score"].to_numpy(dtype=float)
        scores[name] = s
        dest = out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                      "anomaly_score": s}).to_csv(dest, index=False)
    return scores, seconds


def evaluate(ns, scores: dict, corpus, windows) -> dict:
    kw = {"corpus": corpus, "windows": windows}
    out = {}
    for profile in ns.PROFILES:
        thr, swept = ns.sweep(scores, profile, **kw)
        at = ns.score_corpus({p: s >= DEFAULT_THRESHOLD for p, s in scores.items()},
                             profile, **kw)
        out[profile] = {"swept": swept, "swept_threshold": thr, "default": at}
    return out


def by_category(ns, scores, corpus, windows) -> list[dict]:
    kw = {"corpus": corpus, "windows": windows}
    cats = sorted({p.split("/")[0] for p in scores})
    rows = []
    for cat in cats:
        inside = {p: s for p, s in scores.items() if p.startswith(cat + "/")}
        rest = {p: s for p, s in scores.items() if not p.startswith(cat + "/")}
        row = {"category": cat, "files": len(inside)}
        det = {p: s >= DEFAULT_THRESHOLD for p, s in inside.items()}
        if not any(windows.get(p) for p in inside):
            row["fp_rows_at_default"] = sum(
                ns.score_file(corpus[p], [], d).fp for p, d in det.items())
            rows.append(row)
            continue
        row["standard_default"] = ns.score_corpus(det, "standard", **kw)
        row["standard_swept"] = ns.sweep(inside, "standard", **kw)[1]
        thr = ns.sweep(rest, "standard", **kw)[0]  # chosen without this category
        row["loco_threshold"] = f"{thr:.4f}"
        row["standard_loco"] = ns.score_corpus({p: s >= thr for p, s in inside.items()},
                                               "standard", **kw)
        rows.append(row)
    return rows


LOCO_GRID = [(g, h, m) for g in (3.0, 4.0, 5.0) for h in (20, 30, 50) for m in (0.02, 0.05)]


def loco_params(ns, corpus, windows) -> dict:
    """Leave-one-category-out over parameters: for each category, guard/hold/margin
    are chosen (18 combinations, threshold 0.5) on the other categories and the
    held-out category is scored with them; the held-out detections are then scored
    together as one corpus."""
    from warehouse.analytics.streaming import stream_scores

    kw = {"corpus": corpus, "windows": windows}
    scores = {k: {p: stream_scores(df["value"].to_numpy(float), df["timestamp"], guard=k[0],
                                   hold=k[1], margin=k[2])["score"].to_numpy()
                  for p, df in corpus.items()} for k in LOCO_GRID}

    def std(sub):
        return ns.score_corpus({p: v >= DEFAULT_THRESHOLD for p, v in sub.items()},
                               "standard", **kw) if any(windows.get(p) for p in sub) else 0.0

    rows, det = [], {}
    for cat in sorted({p.split("/")[0] for p in corpus}):
        best = max(LOCO_GRID, key=lambda k: std({p: v for p, v in scores[k].items()
                                                  if not p.startswith(cat + "/")}))
        held = {p: v for p, v in scores[best].items() if p.startswith(cat + "/")}
        det.update({p: v >= DEFAULT_THRESHOLD for p, v in held.items()})
        rows.append({"category": cat, "guard": best[0], "hold": best[1], "margin": best[2],
                     "held_out_standard": std(held) if any(windows.get(p) for p in held)
                     else None})
    assembled = {prof: ns.score_corpus(det, prof, **kw) for prof in ns.PROFILES}
    return {"categories": rows, "assembled": assembled}


def speed() -> dict:
    rng = np.random.default_rng(0)
    n = 200_000
    t = np.arange(n)
    x = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, n)
    ts = pd.date_range("2026-01-05", periods=n, freq="5min", tz="UTC")
    t0 = time.process_time()
    StreamingDetector().update(x, ts)
    one_call = n / (time.process_time() - t0)
    det = StreamingDetector()
    t0 = time.process_time()
    for a in range(0, n, 1000):
        det.update(x[a:a + 1000], ts[a:a + 1000])
    chunked = n / (time.process_time() - t0)
    det = StreamingDetector()
    det.update(x[:10_000], ts[:10_000])
    t0 = time.process_time()
    for i in range(10_000, 10_500):
        det.update(x[i:i + 1])
    per_point_ms = (time.process_time() - t0) / 500 * 1e3
    m = 1_000_000
    big = pd.DataFrame({"ts": pd.date_range("2026-01-05", periods=m, freq="1min", tz="UTC"),
                        "value": 50 + 10 * np.sin(2 * np.pi * np.arange(m) / 1440)
                        + rng.normal(0, 1, m)})
    t0 = time.perf_counter()
    c0 = time.process_time()
    analytics.anomalies(big, mode="retrospective")
    retro_wall, retro_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    analytics.anomalies(big, mode="streaming")
    stream_1m, stream_1m_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    analytics.anomalies(big, mode="retrospective", methods=("record",))
    record_1m, record_1m_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"streaming_points_per_s_one_call": one_call,
            "streaming_points_per_s_1000_point_updates": chunked,
            "streaming_ms_per_single_point_update": per_point_ms,
            "retrospective_1M_wall_s": retro_wall, "retrospective_1M_cpu_s": retro_cpu,
            "streaming_1M_wall_s": stream_1m, "streaming_1M_cpu_s": stream_1m_cpu,
            "retrospective_record_1M_wall_s": record_1m,
            "retrospective_record_1M_cpu_s": record_1m_cpu,
            "state_bytes_json": len(str(det.to_state()))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab-dir", default=str(SHARED / "data" / "nab"))
    ap.add_argument("--scorer", default=str(SHARED / "tools" / "nab_score.py"))
    ap.add_argument("--out", help="folder for the score CSVs (default: a new temporary "
                                  "folder, printed)")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--loco", action="store_true",
                    help="leave-one-category-out choice of guard/hold/margin (~1 min)")
    args = ap.parse_args(argv)
    ns = _scorer(Path(args.scorer))
    args.out = args.out or tempfile.mkdtemp(prefix="nab_scores_")
    corpus, windows = ns.load_corpus(args.nab_dir), ns.load_windows(args.nab_dir)
    scores, seconds = score_files(corpus, Path(args.out))
    rows_n = sum(len(d) for d in corpus.values())
    print(f"score CSVs in {args.out}")
    print(f"{len(corpus)} files, {rows_n} rows scored in {seconds:.1f} s "
          f"({rows_n / seconds:,.0f} points/s through anomalies(mode='streaming'))")
    # the files on disk are what NAB would read: score those, not the arrays in memory
    scores = ns.read_scores_dir(args.out, corpus)
    results = evaluate(ns, scores, corpus, windows)
    table = [{"profile": p, "swept": r["swept"], "threshold": r["swept_threshold"],
              f"at default {DEFAULT_THRESHOLD}": r["default"]} for p, r in results.items()]
    print_table(table, ["profile", "swept", "threshold", f"at default {DEFAULT_THRESHOLD}"])
    print("references (standard, same scorer): "
          + ", ".join(f"{k} {v}" for k, v in REFERENCES.items()))
    cats = by_category(ns, scores, corpus, windows)
    print()
    print_table(cats, ["category", "files", "standard_default", "standard_swept",
                       "loco_threshold", "standard_loco", "fp_rows_at_default"])
    per_file = []
    for p, s in scores.items():
        r = ns.score_file(corpus[p], windows.get(p, []), s >= DEFAULT_THRESHOLD, "standard")
        per_file.append({"file": p, "raw": r.score, "windows": f"{r.windows_detected}/"
                         f"{r.windows}", "tp_rows": r.tp, "fp_rows": r.fp})
    if args.per_file:
        print()
        print_table(per_file, ["file", "raw", "windows", "tp_rows", "fp_rows"])
    extra = {"profiles": results, "categories": cats, "per_file": per_file,
             "references_standard": REFERENCES, "default_threshold": DEFAULT_THRESHOLD,
             "points_per_s_api": rows_n / seconds}
    if args.loco:
        extra["loco_params"] = loco_params(ns, corpus, windows)
        print()
        print_table(extra["loco_params"]["categories"],
                    ["category", "guard", "hold", "margin", "held_out_standard"])
        print("held-out detections scored together: " + ", ".join(
            f"{k} {v:.1f}" for k, v in extra["loco_params"]["assembled"].items()))
    if args.speed:
        extra["speed"] = speed()
        print()
        for k, v in extra["speed"].items():
            print(f"{k}: {v:,.2f}")
    path = write_results("nab", table, extra)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
