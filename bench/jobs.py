"""Jobs benchmark: rollup refresh throughput, a 30-day hourly query answered from rollups vs
from raw points, archive throughput and Parquet bytes per point, retention time. Prints a
Markdown table, writes bench/results/jobs.json.

    python bench/jobs.py [--points 10000000] [--engines duckdb,postgresql] [--query-repeat 15]

The 30-day hourly query runs from raw points and from rollups alternately, --query-repeat
times each: median and p95 seconds of the whole wh.points() call, median CPU seconds (this
process, plus the bench's own PostgreSQL server), the main statement alone, and the load
average before and after (the machine may be shared).

Data: one metric on 40 hosts (40 series) sampled at a fixed step over 30 days, values random
walks measured to 0.01 (as metrics usually are), so the 30-day hourly query aggregates every
point. The Parquet size of full-precision random doubles (the worst case) is measured
separately on one million points.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, timer, write_results  # noqa: E402

from warehouse import Warehouse, jobs  # noqa: E402
from warehouse.backends.base import POINTS_ARROW_SCHEMA  # noqa: E402
from warehouse.backends.parquet import write_points_file  # noqa: E402
from warehouse.pgserver import LocalPostgres  # noqa: E402

HOSTS, METRICS, DAYS = 40, 1, 30
END = pd.Timestamp("2026-11-01", tz="UTC")
BATCH = 1_000_000


def batches(n: int):
    """n points over HOSTS x METRICS series in [END - 30d, END), oldest first, in batches."""
    series = HOSTS * METRICS
    per = n // series
    step = pd.Timedelta(days=DAYS) / per
    ts_all = END - pd.Timedelta(days=DAYS) + step * np.arange(per)
    rng = np.random.default_rng(0)
    walks = (np.cumsum(rng.normal(0, 0.5, (series, per)), axis=1) + 100).round(2)
    rows_per_batch = max(BATCH // series, 1)
    for lo in range(0, per, rows_per_batch):
        hi = min(lo + rows_per_batch, per)
        k = hi - lo
        yield pd.DataFrame({
            "metric": np.repeat([f"host.metric_{m}" for m in range(METRICS)], HOSTS * k),
            "host": np.tile(np.repeat([f"host-{h}" for h in range(HOSTS)], k), METRICS),
            "ts": np.tile(ts_all[lo:hi], series),
            "value": walks[:, lo:hi].ravel(),
        })


def median_seconds(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        with timer() as t:
            result = fn()
        times.append(t())
    return statistics.median(times), result


def server_cpu_seconds(pg: LocalPostgres | None):
    """A function returning the CPU seconds the bench's own PostgreSQL server has used so far
    (the postmaster with the children it reaped, plus its live children), or None when the
    server is not ours to read. Its backends do a query's SQL; this process only sees the
    client's share."""
    if pg is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])

    def stat(pid: int) -> list[str]:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()  # fields from the state on

    def seconds() -> float:
        fields = stat(postmaster)
        total = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = stat(int(entry))
                except OSError:  # gone meanwhile: the postmaster's cutime has it
                    continue
                if int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])
        return total / tick

    return seconds


def compare_queries(wh, queries: dict, repeat: int, server_cpu=None) -> dict[str, dict]:
    """Each query ``repeat`` times, the queries alternating (so load changes hit each alike):
    per query the median and p95 seconds of the whole call, the median seconds of its main
    statement alone (its last fetch: the API adds series lookup, planning and labels around
    it), and the median CPU seconds of this process plus, given ``server_cpu``, the server's.
    The load average before and after goes with each."""
    backend, fetches = wh.backend, []
    originals = {name: getattr(backend, name)
                 for name in ("fetch_frame", "fetch_columns", "fetch_points")}

    def timed(original):
        def fetch(conn, sql, params):
            started = time.perf_counter()
            try:
                return original(conn, sql, params)
            finally:
                fetches.append(time.perf_counter() - started)
        return fetch

    samples = {name: {"wall": [], "sql": [], "cpu": []} for name in queries}
    for name, original in originals.items():
        setattr(backend, name, timed(original))
    load_before = os.getloadavg()
    try:
        for fn in queries.values():
            fn()  # warm: series cache, plans, pages
        for _ in range(repeat):
            for name, fn in queries.items():
                fetches.clear()
                server = server_cpu() if server_cpu else 0.0
                cpu, started = time.process_time(), time.perf_counter()
                fn()
                samples[name]["wall"].append(time.perf_counter() - started)
                samples[name]["cpu"].append(time.process_time() - cpu
                                            + (server_cpu() - server if server_cpu else 0.0))
                samples[name]["sql"].append(fetches[-1])
    finally:
        for name, original in originals.items():
            setattr(backend, name, original)
    load = [round(v, 2) for v in load_before + os.getloadavg()]
    return {name: {"seconds": statistics.median(s["wall"]),
                   "p95_seconds": float(np.percentile(s["wall"], 95)),
                   "sql_seconds": statistics.median(s["sql"]),
                   "cpu_seconds": statistics.median(s["cpu"]), "load_average": load}
            for name, s in samples.items()}


def raw_points(wh, *args, **kwargs):
    """The same query answered from raw points only (no rollup tier)."""
    return wh.points(*args, rollups=False, **kwargs)


def bench_engine(engine: str, url: str, n: int, archive: Path, query_repeat: int,
                 server_cpu=None) -> list[dict]:
    os.environ["WAREHOUSE_ARCHIVE"] = str(archive)
    wh = Warehouse(url)
    ingested = 0
    with timer() as t:
        for frame in batches(n):
            ingested += wh.write_points(frame, label_columns=["host"]).written
    rows = [{"engine": engine, "step": "ingest (write_points)", "points": ingested,
             "seconds": t(), "points_per_s": ingested / t()}]

    run = jobs.run_job(wh, "refresh_rollups", now=END, retries=0)
    assert run.status == "succeeded", run.error
    rows.append({"engine": engine, "step": "refresh_rollups (1m, 1h, 1d; first run)",
                 "points": ingested, "seconds": run.seconds,
                 "points_per_s": ingested / run.seconds})

    args = ("host.metric_0", END - pd.Timedelta(days=DAYS), END)  # every point
    raw = raw_points(wh, *args, every="1h", agg="mean")
    tiered = wh.points(*args, every="1h", agg="mean")
    pd.testing.assert_frame_equal(tiered, raw, rtol=1e-9)
    timings = compare_queries(
        wh, {"raw": lambda: raw_points(wh, *args, every="1h", agg="mean"),
             "tier": lambda: wh.points(*args, every="1h", agg="mean")},
        repeat=query_repeat, server_cpu=server_cpu)
    raw_t, tier_t = timings["raw"], timings["tier"]
    per_query = ingested // METRICS
    for side, t in (("raw points", raw_t), ("rollups", tier_t)):
        row = {"engine": engine, "step": f"30-day hourly mean, {side}: wh.points()",
               "points": per_query, "seconds": t["seconds"], "p95_seconds": t["p95_seconds"],
               "cpu_seconds": t["cpu_seconds"], "load_average": t["load_average"],
               "ms": t["seconds"] * 1e3, "p95_ms": t["p95_seconds"] * 1e3,
               "cpu_ms": t["cpu_seconds"] * 1e3,
               "load": f"{t['load_average'][0]:.1f}-{t['load_average'][3]:.1f}"}
        if t is tier_t:
            row["speedup"] = raw_t["seconds"] / tier_t["seconds"]
            row["cpu_speedup"] = raw_t["cpu_seconds"] / tier_t["cpu_seconds"]
        rows.append(row)
    for side, t in (("raw points", raw_t), ("rollups", tier_t)):
        row = {"engine": engine, "step": f"30-day hourly mean, {side}: SQL only",
               "points": per_query, "seconds": t["sql_seconds"], "ms": t["sql_seconds"] * 1e3}
        if t is tier_t:
            row["speedup"] = raw_t["sql_seconds"] / tier_t["sql_seconds"]
        rows.append(row)

    late = next(batches(n)).iloc[:1000].assign(ts=lambda f: f["ts"] + pd.Timedelta("1ms"))
    wh.write_points(late, label_columns=["host"])
    run = jobs.run_job(wh, "refresh_rollups", now=END, retries=0)
    rows.append({"engine": engine, "step": "refresh after 1,000 late points", "points": 1000,
                 "seconds": run.seconds})

    jobs.set_retention(wh, "points", "1d", archive=True)
    run = jobs.run_job(wh, "archive", now=END, retries=0)
    assert run.status == "succeeded", run.error
    manifest = jobs.archive_manifest(wh)
    archived = int(manifest["rows"].sum())
    rows.append({"engine": engine, "step": "archive (Parquet, verified)", "points": archived,
                 "seconds": run.seconds, "points_per_s": archived / run.seconds,
                 "bytes_per_point": manifest["bytes"].sum() / archived})
    run = jobs.run_job(wh, "retention", now=END, retries=0)
    assert run.status == "succeeded" and run.rows == archived, (run.error, run.notes)
    rows.append({"engine": engine, "step": "retention (drop archived chunks)",
                 "points": archived, "seconds": run.seconds,
                 "points_per_s": archived / run.seconds})
    arch_s, from_archive = median_seconds(lambda: wh.points(*args, every="1h", agg="p95"), 1)
    assert len(from_archive) == HOSTS * DAYS * 24
    rows.append({"engine": engine, "step": "30-day hourly p95, from the archive",
                 "points": per_query, "seconds": arch_s})
    wh.close()
    return rows


def worst_case_bytes(folder: Path) -> dict:
    """Parquet bytes per point for full-precision random doubles (nothing to compress)."""
    n = 1_000_000
    rng = np.random.default_rng(1)
    series = np.repeat(np.arange(40, dtype="i4"), n // 40)
    ts = np.tile(np.arange(n // 40, dtype="i8") * 10_000_000, 40) + 1_790_000_000_000_000
    table = pa.table({"ts": pa.array(ts).cast(pa.timestamp("us", "UTC")),
                      "series_id": pa.array(series),
                      "value": pa.array(np.cumsum(rng.normal(size=n))),
                      "run_id": pa.nulls(n, pa.string())}, schema=POINTS_ARROW_SCHEMA)
    tmp, _, size = write_points_file(table, folder / "worst.parquet")
    tmp.unlink()
    return {"engine": "-", "step": "Parquet, full-precision random doubles", "points": n,
            "bytes_per_point": size / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--engines", default="duckdb,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("WAREHOUSE_BENCH_PG_URL"))
    parser.add_argument("--query-repeat", type=int, default=15,
                        help="runs of each side of the 30-day hourly query (alternating)")
    args = parser.parse_args()
    rows: list[dict] = []
    pg = None
    if "postgresql" in args.engines and not args.pg_url:
        pg = LocalPostgres().start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            for engine in args.engines.split(","):
                if engine == "duckdb":
                    url = f"duckdb:///{folder / 'jobs.duckdb'}"
                else:
                    url = args.pg_url or pg.create_database(f"bench_jobs_{int(time.time())}")
                rows += bench_engine(engine, url, args.points, folder / f"archive-{engine}",
                                     args.query_repeat,
                                     server_cpu_seconds(pg) if engine == "postgresql" else None)
                print(f"done: {engine}", file=sys.stderr)
            rows.append(worst_case_bytes(folder))
    finally:
        if pg is not None:
            pg.stop()
    table = print_table(rows, ["engine", "step", "points", "seconds", "points_per_s",
                               "bytes_per_point", "ms", "p95_ms", "cpu_ms", "speedup",
                               "cpu_speedup", "load"])
    goals = {"rollup_query_speedup": ">= 20", "parquet_bytes_per_point": "<= 4"}
    print(f"\nwrote {write_results('jobs', rows, {'markdown': table, 'goals': goals})}")


if __name__ == "__main__":
    main()
