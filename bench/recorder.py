"""Benchmark of ``warehouse.recorder``: what instrumentation costs a recipe, and how fast the
buffered writer moves recorded points into DuckDB.

Run from the repository root::

    python bench/recorder.py [--quick]

Prints a table and writes ``bench/results/recorder.json``.

- step enter+exit: ``with run.step("s"): pass``, sampling off, resources on (the default) and
  off; the cost is the median over repeats of a block of steps minus the same bare loop
  (goal ≤ 20 µs);
- ``metric()``: ``step.metric("m", i)`` minus a bare loop calling a no-op with the same
  arguments (goal ≤ 3 µs), and with one extra label;
- writer throughput: points recorded with ``metric()`` into the buffer, then one flush into a
  fresh DuckDB file, timed (goal ≥ 200k points/s);
- bounded memory: ten times more points than the buffer holds, recorded as fast as possible
  with the background writer on; RSS is sampled and must stay bounded (overflow spills to
  disk). Once into DuckDB, once with the database unreachable (everything spills).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warehouse import Warehouse
from warehouse.recorder import Recorder

GOALS = {"step_us": 20.0, "metric_us": 3.0, "points_per_s": 200_000}


def _overhead_us(fn, baseline, n: int, repeats: int) -> dict:
    """µs per operation of ``fn(n)`` minus ``baseline(n)``: the two are timed back to back in
    each repeat (so both see the same machine load), and the per-repeat differences are
    summarised: median (the figure against the goal), best decile and the raw median."""
    diffs, raw = [], []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        baseline(n)
        t1 = time.perf_counter_ns()
        fn(n)
        t2 = time.perf_counter_ns()
        raw.append((t2 - t1) / n / 1000)
        diffs.append(((t2 - t1) - (t1 - t0)) / n / 1000)
    diffs.sort()
    return {"median": statistics.median(diffs), "p10": diffs[len(diffs) // 10],
            "raw_median": statistics.median(raw)}


def bench_hot_path(wh: Warehouse, spill: Path, repeats: int) -> dict:
    recorder = Recorder(wh, spill_dir=spill)  # defaults: background writer every second
    out = {}

    def bare(n):
        for _ in range(n):
            pass

    def noop(name, value):
        pass

    def bare_call(n):
        for i in range(n):
            noop("m", i)

    def noop_labels(name, value, **labels):
        pass

    def bare_call_labels(n):
        for i in range(n):
            noop_labels("m", i, table="orders")

    for resources in (True, False):
        with recorder.recipe_run("bench", resources=resources) as run:
            def steps(n, run=run):
                for _ in range(n):
                    with run.step("s"):
                        pass
            key = "step" if resources else "step_no_resources"
            out[key] = _overhead_us(steps, bare, 1000, repeats)

    with recorder.recipe_run("bench") as run, run.step("metrics") as step:
        def metrics(n):
            for i in range(n):
                step.metric("m", i)

        def labelled(n):
            for i in range(n):
                step.metric("m", i, table="orders")
        out["metric"] = _overhead_us(metrics, bare_call, 2000, repeats)
        out["metric_labels"] = _overhead_us(labelled, bare_call_labels, 2000, repeats)
    recorder.close()
    return out


def bench_writer(url: str, spill: Path, points: int) -> dict:
    wh = Warehouse(url)
    # No background thread and room for everything: the flush below is the only write.
    recorder = Recorder(wh, spill_dir=spill, flush_interval=None, capacity=points + 100,
                        flush_at=points + 100)
    with recorder.recipe_run("throughput") as run:
        steps = [run.step(f"step{i}") for i in range(10)]
        for s in steps:
            s.__enter__()
        t0 = time.perf_counter()
        for i in range(points):
            steps[i % 10].metric("rows", i)
        record_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stats = recorder.flush()
        flush_s = time.perf_counter() - t0
        for s in reversed(steps):
            s.__exit__(None, None, None)
    recorder.close()
    stored = int(wh.sql("select count(*) as n from points")["n"].iloc[0])
    wh.close()
    return {"points": points, "stored": stored, "record_s": record_s, "flush_s": flush_s,
            "points_per_s": points / flush_s, "spilled": stats["spilled"]}


def bench_bounded(url: str, spill: Path, points: int, capacity: int, *,
                  down: bool = False) -> dict:
    """Flood the recorder; with ``down`` the database is unreachable (a closed port), so
    everything spills and RSS shows the recorder's own memory without DuckDB's caches."""
    wh = None if down else Warehouse(url)
    process = psutil.Process()
    recorder = Recorder(wh, url=url if down else None, spill_dir=spill, capacity=capacity)
    rss = []
    t0 = time.perf_counter()
    with recorder.recipe_run("bounded") as run, run.step("flood") as step:
        for i in range(points):
            step.metric("rows", i)
            if i % 50_000 == 0:
                rss.append(process.memory_info().rss)
    produce_s = time.perf_counter() - t0
    stats = recorder.close()  # writes the rest and replays what overflowed to disk
    total_s = time.perf_counter() - t0
    stored = 0
    if wh is not None:
        stored = int(wh.sql("select count(*) as n from points")["n"].iloc[0])
        wh.close()
    # Bounded means the second half of the flood needs no more memory than the first did;
    # unbounded growth would scale with the number of points.
    half = len(rss) // 2
    return {"points": points, "capacity": capacity, "stored": stored,
            "rss_max_first_half_mb": max(rss[:half]) / 2**20, "rss_max_mb": max(rss) / 2**20,
            "rss_growth_mb": (max(rss[half:]) - max(rss[:half])) / 2**20,
            "rss_mb_every_50k_points": [round(r / 2**20) for r in rss], "produce_s": produce_s,
            "total_s": total_s, "end_to_end_points_per_s": points / total_s,
            "overflows": stats["overflows"], "spilled": stats["spilled"],
            "replayed": stats["replayed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and points")
    args = parser.parse_args()
    repeats = 20 if args.quick else 200
    n_points = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wh = Warehouse(f"duckdb:///{tmp / 'hot.duckdb'}")
        hot = bench_hot_path(wh, tmp / "spill-hot", repeats)
        wh.close()
        writer = bench_writer(f"duckdb:///{tmp / 'writer.duckdb'}", tmp / "spill-w", n_points)
        bounded = bench_bounded(f"duckdb:///{tmp / 'bounded.duckdb'}", tmp / "spill-b",
                                n_points, 100_000)
        down = bench_bounded("postgresql://nobody@127.0.0.1:1/unreachable", tmp / "spill-d",
                             n_points, 100_000, down=True)
    result = {"python": platform.python_version(), "machine": platform.machine(),
              "cpus": psutil.cpu_count(), "load_average": os.getloadavg(), "goals": GOALS,
              "hot_path": hot, "writer": writer, "bounded": bounded, "database_down": down}
    def micro(key: str) -> str:
        return f"{hot[key]['median']:.2f} µs ({hot[key]['p10']:.2f})"

    rows = [
        ("step enter+exit (resources on)", micro("step"), "≤ 20 µs"),
        ("step enter+exit (resources off)", micro("step_no_resources"), ""),
        ("metric()", micro("metric"), "≤ 3 µs"),
        ("metric() with one extra label", micro("metric_labels"), ""),
        ("writer: points into DuckDB", f"{writer['points_per_s']:,.0f} /s", "≥ 200,000 /s"),
        ("flood: end to end incl. spill+replay", f"{bounded['end_to_end_points_per_s']:,.0f} /s",
         ""),
        ("flood: RSS growth, 2nd half vs 1st (10× capacity)", f"{bounded['rss_growth_mb']:.0f} MB",
         "bounded"),
        ("flood, database down: all to spill files", f"{down['points'] / down['total_s']:,.0f} /s",
         ""),
        ("flood, database down: RSS growth, 2nd half vs 1st", f"{down['rss_growth_mb']:.0f} MB",
         "bounded"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"load average {result['load_average'][0]:.1f} on {result['cpus']} CPUs; "
          "µs: median over repeats (best decile in parentheses)")
    print(f"{'measure':{width}}  {'result':>20}  goal")
    for name, value, goal in rows:
        print(f"{name:{width}}  {value:>20}  {goal}")
    print(f"flood: stored {bounded['stored']:,} of {bounded['points']:,} points, "
          f"{bounded['overflows']} overflows, {bounded['spilled']:,} spilled and "
          f"{bounded['replayed']:,} replayed")
    out = Path(__file__).resolve().parent / "results" / "recorder.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
