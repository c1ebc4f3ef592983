"""Dashboards benchmark: render time of each built-in on a year of demo-like data (>= 10M
points, >= 100k runs) with rollups refreshed, and export throughput of 1M rows to CSV,
Parquet and XLSX. Prints Markdown tables, writes bench/results/dashboards.json.

    python bench/dashboards.py [--recipes 12] [--hosts 20] [--days 365]
                               [--engines duckdb,postgresql] [--ranges 30,365]
                               [--export-rows 1000000] [--repeat 3] [--keep DIR]
                               [--baseline-rev REV] [--serial]

``--keep DIR`` keeps the DuckDB file (and reuses a ``--pg-url`` database) between runs:
data is loaded only when the warehouse has no runs yet. ``--baseline-rev REV`` also renders
the built-in documents as they were at git revision REV, in the same process on the same
data, so a change of the documents is compared at the same load; ``--serial`` renders each
dashboard once more on one thread to show what the concurrent panels gain.

Data (vectorised, deterministic): RECIPES recipes run hourly for 365 days with 4 steps
each (run and step rows with resource use, ~3% failures in the last step, transform-like
slowdown in step 1), a ``recipe.duration_ms`` point per run, a ``step.duration_ms`` point
per step, and ``host.cpu_percent`` every minute on HOSTS hosts. Goals (issue 13): <= 500 ms
per dashboard on DuckDB with rollups, <= 1 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, timer, write_results  # noqa: E402

from warehouse import Warehouse, export  # noqa: E402
from warehouse.dashboards import BUILT_IN, parse, render, template  # noqa: E402
from warehouse.dashboards.analysis_cache import CACHE as ANALYSES  # noqa: E402
from warehouse.pgserver import LocalPostgres  # noqa: E402

END = pd.Timestamp("2026-11-01", tz="UTC")
DAYS = 365  # --days sets it
STEPS = ("extract", "transform", "validate", "load")
BASE_S = np.array([40.0, 90.0, 15.0, 30.0])
RECIPE = "recipe-00"  # the recipe the dashboards are rendered for


def year_of_runs(recipes: int, seed: int = 1):
    """Runs, steps and their points for ``recipes`` hourly recipes over DAYS days."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(END - pd.Timedelta(days=DAYS), END, freq="1h", inclusive="left")
    n_per = len(starts)
    names = [f"recipe-{i:02d}" for i in range(recipes)]
    recipe = np.repeat(names, n_per)
    started = np.tile(starts.tz_localize(None).to_numpy().astype("datetime64[us]"), recipes)
    n = len(recipe)
    age = np.tile(np.arange(n_per) / 24.0, recipes)
    seconds = BASE_S[None, :] * rng.lognormal(0, 0.12, (n, 4))
    seconds[:, 1] *= 1.002 ** age  # a slowly regressing step
    failed = rng.random(n) < 0.03
    seconds[failed, 3] = 30.0
    offsets = np.cumsum(np.c_[np.ones(n), seconds[:, :3]], axis=1)  # sequential steps
    run_ids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, n, dtype=np.int64)]
    step_us = (seconds * 1e6).astype(np.int64)
    begin = started[:, None] + (offsets * 1e6).astype("timedelta64[us]")
    finish = begin + step_us.astype("timedelta64[us]")
    cpu = seconds * rng.uniform(0.3, 0.9, (n, 4))
    status = np.where(failed, "failed", "succeeded")
    steps = pd.DataFrame({
        "run_id": np.repeat(run_ids, 4), "step_id": np.tile([f"{i}-{s}" for i, s in
                                                             enumerate(STEPS)], n),
        "step": np.tile(STEPS, n), "ordinal": np.tile(np.arange(4), n), "attempt": 1,
        "started_at": pd.to_datetime(begin.ravel(), utc=True),
        "finished_at": pd.to_datetime(finish.ravel(), utc=True),
        "duration_us": step_us.ravel(),
        "status": np.c_[np.full((n, 3), "succeeded"), status].ravel(),
        "error_type": np.c_[np.full((n, 3), None), np.where(failed, "TimeoutError", None)].ravel(),
        "error_message": np.c_[np.full((n, 3), None), np.where(
            failed, "timeout after 30s connecting to db:5432", None)].ravel(),
        "host": np.repeat([f"worker-{i % 8}" for i in range(n)], 4),
        "cpu_user_us": (cpu * 0.8e6).astype(np.int64).ravel(),
        "cpu_system_us": (cpu * 0.2e6).astype(np.int64).ravel(),
        "peak_rss_bytes": rng.integers(200 * 2**20, 2000 * 2**20, n * 4),
        "read_bytes": rng.integers(2**20, 500 * 2**20, n * 4),
        "written_bytes": rng.integers(2**20, 200 * 2**20, n * 4),
    })
    steps["recipe"] = np.repeat(recipe, 4)
    run_end = pd.to_datetime(finish[:, 3], utc=True)
    runs = pd.DataFrame({
        "run_id": run_ids, "recipe": recipe, "started_at": pd.to_datetime(started, utc=True),
        "finished_at": run_end, "status": status,
        "duration_us": ((run_end - pd.to_datetime(started, utc=True)) / pd.Timedelta("1us"))
        .astype(np.int64),
        "error_type": np.where(failed, "TimeoutError", None),
        "error_message": np.where(failed, "timeout after 30s connecting to db:5432", None),
        "host": [f"worker-{i % 8}" for i in range(n)],
        "cpu_user_us": (cpu.sum(axis=1) * 0.8e6).astype(np.int64),
        "cpu_system_us": (cpu.sum(axis=1) * 0.2e6).astype(np.int64),
        "peak_rss_bytes": steps.groupby("run_id", sort=False)["peak_rss_bytes"].max().to_numpy(),
        "read_bytes": steps.groupby("run_id", sort=False)["read_bytes"].sum().to_numpy(),
        "written_bytes": steps.groupby("run_id", sort=False)["written_bytes"].sum().to_numpy(),
        "last_seen_at": run_end,
    })
    points = pd.concat([
        pd.DataFrame({"metric": "recipe.duration_ms", "recipe": recipe, "step": None,
                      "ts": run_end, "value": runs["duration_us"] / 1000}),
        pd.DataFrame({"metric": "step.duration_ms", "recipe": steps["recipe"],
                      "step": steps["step"], "ts": steps["finished_at"],
                      "value": steps["duration_us"] / 1000}),
    ], ignore_index=True)
    return runs, steps.drop(columns="recipe"), points


def host_cpu(hosts: int, seed: int = 2):
    """``host.cpu_percent`` every minute on ``hosts`` hosts, one frame per host."""
    rng = np.random.default_rng(seed)
    minutes = pd.date_range(END - pd.Timedelta(days=DAYS), END, freq="1min", inclusive="left")
    hours = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60
    for h in range(hosts):
        value = 35 + 20 * np.sin((hours - 9) / 24 * 2 * np.pi) + rng.normal(0, 3, len(minutes))
        yield pd.DataFrame({"metric": "host.cpu_percent", "host": f"host-{h:02d}",
                            "ts": minutes, "value": np.clip(value, 0, 100).round(2)})


def load(wh: Warehouse, recipes: int, hosts: int) -> dict:
    present = int(wh.sql("SELECT count(*) AS n FROM runs")["n"].iloc[0])
    if present:  # a kept warehouse: measure on what is there
        if wh.backend.dialect == "postgresql":
            analyze_parents(wh)
        return {"runs": present, "reused": True,
                "points": int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])}
    runs, steps, points = year_of_runs(recipes)
    counts = {"runs": len(runs), "steps": len(steps), "points": 0}
    with timer() as took:
        for lo in range(0, len(runs), 50_000):
            wh.write_runs(runs.iloc[lo:lo + 50_000])
        for lo in range(0, len(steps), 200_000):
            wh.write_steps(steps.iloc[lo:lo + 200_000])
        for lo in range(0, len(points), 1_000_000):
            part = points.iloc[lo:lo + 1_000_000]
            for metric, group in part.groupby("metric"):
                columns = ["recipe"] + (["step"] if metric == "step.duration_ms" else [])
                wh.write_points(group.drop(columns=[c for c in ("recipe", "step")
                                                    if c not in columns]),
                                label_columns=columns)
        counts["points"] += len(points)
        for frame in host_cpu(hosts):
            wh.write_points(frame, label_columns=["host"])
            counts["points"] += len(frame)
    counts["load_s"] = took()
    with timer() as took:
        wh.refresh_rollups(now=END)
    counts["rollups_s"] = took()
    if wh.backend.dialect == "postgresql":
        analyze_parents(wh)
    return counts


def analyze_parents(wh: Warehouse) -> None:
    """ANALYZE the partitioned parents: autovacuum analyses only the partitions, so the
    planner has no statistics for a join of runs and step_runs and picks a nested loop that
    probes every step partition per run (a year: 16 s instead of 0.5 s for one panel)."""
    from sqlalchemy import text

    with wh.engine.begin() as conn:
        for table in ("runs", "step_runs", "points"):
            conn.execute(text(f"ANALYZE {table}"))


def variables(name: str, days: int) -> dict:
    out = {"recipe": RECIPE, "start": (END - pd.Timedelta(days=days)).isoformat(),
           "end": END.isoformat()}
    if name == "trend-analysis":
        out["split"] = (END - pd.Timedelta(days=days / 2)).isoformat()
    return out


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def documents(baseline_rev: str | None) -> list[tuple[str, str, object]]:
    """(label, name, dashboard) to render: the built-ins, and those of ``baseline_rev``."""
    out = [("now", name, template(name)) for name in BUILT_IN]
    if baseline_rev:
        root = Path(__file__).resolve().parent.parent
        for name in BUILT_IN:
            text = subprocess.run(
                ["git", "show", f"{baseline_rev}:warehouse/dashboards/templates/{name}.json"],
                cwd=root, check=True, capture_output=True, text=True).stdout
            out.append((f"baseline {baseline_rev}", name, parse(json.loads(text))))
    return out


#: (mode, threads, analysis cache emptied before each render): "cold" is a first render
#: (or data changed since the last one), "warm" a refresh with the analytics' input
#: unchanged, "serial" a cold render on one thread.
MODES = (("cold", None, True), ("warm", None, False))
SERIAL = ("serial", 1, True)


def bench_render(wh: Warehouse, engine: str, repeat: int, ranges=(30, 365),
                 baseline_rev: str | None = None, serial: bool = False) -> list[dict]:
    """Each document over each range ``repeat`` times per mode, interleaved (now, baseline,
    now...) so both see the same load; a first render of each warms connections and the
    engine's caches and is not counted."""
    rows = []
    docs = documents(baseline_rev)
    modes = MODES + ((SERIAL,) if serial else ())
    for days in ranges:
        samples = {(label, name, mode): [] for label, name, _ in docs for mode, *_ in modes}
        panels: dict = {}
        errors: dict = {}
        for _label, name, dashboard in docs:
            render(wh, dashboard, variables(name, days))
        for _ in range(repeat):
            for label, name, dashboard in docs:
                for mode, workers, cold in modes:
                    if cold:
                        ANALYSES.clear()
                    kwargs = {"max_workers": workers} if workers else {}
                    result = render(wh, dashboard, variables(name, days), **kwargs)
                    samples[(label, name, mode)].append(result.elapsed_ms)
                    errors[(label, name)] = result.errors
                    for p in result.panels:
                        panels.setdefault((label, name, mode), {}).setdefault(
                            p.id, []).append(p.elapsed_ms)
        for (label, name, mode), times in samples.items():
            per_panel = {pid: round(statistics.median(v), 1)
                         for pid, v in panels[(label, name, mode)].items()}
            worst = max(per_panel, key=per_panel.get)
            rows.append({"engine": engine, "documents": label, "mode": mode,
                         "dashboard": name, "range_days": days,
                         "median_ms": statistics.median(times), "p95_ms": p95(times),
                         "min_ms": min(times), "renders": len(times),
                         "slowest_panel": f"{worst} ({per_panel[worst]:.0f} ms)",
                         "panels_median_ms": per_panel,
                         "errors": len(errors[(label, name)]),
                         "error_text": errors[(label, name)],
                         "loadavg": os.getloadavg()})
            print({k: v for k, v in rows[-1].items() if k != "panels_median_ms"}, flush=True)
            print("   ", per_panel, flush=True)
    return rows


def bench_export(rows: int) -> list[dict]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "ts": pd.date_range(END - pd.Timedelta(days=30), periods=rows, freq="s", tz="UTC"),
        "recipe": rng.choice(["etl", "ml-train", "report"], rows),
        "value": rng.normal(100, 10, rows), "count": rng.integers(0, 1000, rows),
        "ok": rng.random(rows) < 0.97})
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("csv", "parquet", "json", "xlsx"):
            path = Path(folder) / f"data.{fmt}"
            with timer() as took:
                export.write(frame, path, fmt)
            seconds = took()
            out.append({"format": fmt, "rows": rows, "seconds": seconds,
                        "rows_per_s": rows / seconds, "bytes": path.stat().st_size})
            print(out[-1], flush=True)
    return out


def main() -> None:
    global DAYS  # the data generators read it
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=12)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--engines", default="duckdb,postgresql")
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=int, default=DAYS, help="Days of data to load.")
    parser.add_argument("--ranges", default="30,365", help="Dashboard ranges in days.")
    parser.add_argument("--keep", default=None, help="Keep the DuckDB file in this folder.")
    parser.add_argument("--baseline-rev", default=None,
                        help="Also render the built-ins as they were at this git revision.")
    parser.add_argument("--serial", action="store_true",
                        help="Also render each dashboard on one thread.")
    parser.add_argument("--pg-url", default=None, help="An empty PostgreSQL database to use.")
    args = parser.parse_args()
    DAYS = args.days
    ranges = [int(r) for r in args.ranges.split(",")]
    loads, renders = [], []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for engine in args.engines.split(","):
            pg = None
            if engine == "duckdb":
                url = f"duckdb:///{folder / f'bench-{args.recipes}r-{args.days}d.duckdb'}"
            else:
                pg = None if args.pg_url else LocalPostgres().start()
                url = args.pg_url or pg.create_database(f"bench_dash_{int(time.time())}")
            try:
                wh = Warehouse(url)
                loads.append({"engine": engine, **load(wh, args.recipes, args.hosts),
                              "loadavg": os.getloadavg()})
                print(loads[-1], flush=True)
                renders += bench_render(wh, engine, args.repeat, ranges, args.baseline_rev,
                                        args.serial)
                wh.close()
            finally:
                if pg is not None:
                    pg.stop()
    exports = bench_export(args.export_rows) if args.export_rows else []
    print()
    print_table(loads, ["engine", "runs", "steps", "points", "load_s", "rollups_s"])
    print()
    print_table(renders, ["engine", "documents", "mode", "dashboard", "range_days",
                          "median_ms", "p95_ms", "slowest_panel", "errors", "loadavg"])
    print()
    print_table(exports, ["format", "rows", "seconds", "rows_per_s", "bytes"])
    path = write_results("dashboards", renders, {"loads": loads, "exports": exports,
                                                 "goals_ms": {"duckdb": 500, "postgresql": 1000}})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
