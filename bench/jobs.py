"""Jobs benchmark: rollup refresh throughput, a 30-day hourly query answered from rollups vs
from raw points, archive throughput and Parquet bytes per point, retention time. Prints a
Markdown table, writes bench/results/jobs.json.

    python bench/jobs.py [--points 10000000] [--engines duckdb,postgresql]

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


def query_seconds(wh, query, repeat: int = 5) -> tuple[float, float, object]:
    """Median seconds of the whole ``wh.points`` call, and of its main SQL statement alone
    (the API adds a fixed few milliseconds: series lookup, planning, labels)."""
    backend, sql_times = wh.backend, []
    original = backend.fetch_frame

    def timed(conn, sql, params):
        started = time.perf_counter()
        try:
            return original(conn, sql, params)
        finally:
            sql_times.append(time.perf_counter() - started)

    backend.fetch_frame = timed
    try:
        total, result = median_seconds(query, repeat)
    finally:
        backend.fetch_frame = original
    return total, statistics.median(sql_times), result


def raw_points(wh, *args, **kwargs):
    """The same query answered from raw points only (no rollup tier)."""
    return wh.points(*args, rollups=False, **kwargs)


def bench_engine(engine: str, url: str, n: int, archive: Path) -> list[dict]:
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
    raw_s, raw_sql, raw = query_seconds(
        wh, lambda: raw_points(wh, *args, every="1h", agg="mean"))
    tier_s, tier_sql, tiered = query_seconds(wh, lambda: wh.points(*args, every="1h", agg="mean"))
    pd.testing.assert_frame_equal(tiered, raw, rtol=1e-9)
    per_query = ingested // METRICS
    rows.append({"engine": engine, "step": "30-day hourly mean, raw points: wh.points()",
                 "points": per_query, "seconds": raw_s})
    rows.append({"engine": engine, "step": "30-day hourly mean, rollups: wh.points()",
                 "points": per_query, "seconds": tier_s, "speedup": raw_s / tier_s})
    rows.append({"engine": engine, "step": "30-day hourly mean, raw points: SQL only",
                 "points": per_query, "seconds": raw_sql})
    rows.append({"engine": engine, "step": "30-day hourly mean, rollups: SQL only",
                 "points": per_query, "seconds": tier_sql, "speedup": raw_sql / tier_sql})

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
                rows += bench_engine(engine, url, args.points, folder / f"archive-{engine}")
                print(f"done: {engine}", file=sys.stderr)
            rows.append(worst_case_bytes(folder))
    finally:
        if pg is not None:
            pg.stop()
    table = print_table(rows, ["engine", "step", "points", "seconds", "points_per_s",
                               "speedup", "bytes_per_point"])
    goals = {"rollup_query_speedup": ">= 20", "parquet_bytes_per_point": "<= 4"}
    print(f"\nwrote {write_results('jobs', rows, {'markdown': table, 'goals': goals})}")


if __name__ == "__main__":
    main()
