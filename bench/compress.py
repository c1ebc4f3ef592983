"""Closed-chunk compression on TSBS devops data (issue 15; docs/tsbs.md "Compression").

Loads ``--hosts`` × ``--days`` of TSBS cpu data (bench/tsbs/data.py) into a fresh PostgreSQL
warehouse (a throwaway local server, or ``--url``), rolls it up, then measures:

* bytes per point of ``points`` (heap + indexes, all partitions) before, and of
  ``points_compressed`` plus what stays hot after the compress job;
* compression speed (points encoded per second of the job);
* a 1-host 12-hour hourly max and a 1-host 1-hour raw read before and after (median, p95
  of ``--repeat`` runs; the before numbers are the baseline, same process, same data);
* that every answer is identical.

Writes bench/results/compress.json. The load average is recorded at start and end.

    .venv/bin/python bench/compress.py --hosts 20 --days 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tsbs.data import TAGS, Dataset, cpu_days, host_tags, warehouse_points  # noqa: E402

from warehouse import Warehouse  # noqa: E402
from warehouse.jobs import compress  # noqa: E402


def points_bytes(wh: Warehouse) -> dict:
    """Rows and bytes of points, hot and compressed."""
    with wh.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
    return compress.compression_state(wh)


def timed(fn, repeat: int) -> tuple[pd.DataFrame, dict]:
    """The answer and median/p95 ms of ``repeat`` runs (after one warm-up)."""
    answer = fn()
    seconds = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t)
    ms = np.array(seconds) * 1000
    return answer, {"median_ms": round(float(np.median(ms)), 2),
                    "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def queries(wh: Warehouse, data: Dataset) -> dict:
    """The questions asked before and after: name -> callable."""
    host = {"hostname": "host_1"}
    mid = data.start + pd.Timedelta(hours=30)
    return {
        "1-host 12 h hourly max (raw)": lambda: wh.points(
            "cpu.usage_user", mid, mid + pd.Timedelta(hours=12), labels=host, every="1h",
            agg="max", rollups=False, with_labels=False),
        "1-host 1 h raw": lambda: wh.points(
            "cpu.usage_user", mid, mid + pd.Timedelta(hours=1), labels=host,
            with_labels=False),
        "all hosts 1 day mean per host (raw)": lambda: wh.points(
            "cpu.usage_user", data.start, data.start + pd.Timedelta(days=1), every="1d",
            agg="mean", rollups=False, with_labels=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--url", default=None, help="a PostgreSQL database (default: a "
                                                    "throwaway local server)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results/compress.json"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    server = None
    url = args.url
    if url is None:
        from warehouse.pgserver import LocalPostgres

        server = LocalPostgres().start()
        url = server.create_database("bench_compress")
    try:
        result = run(Warehouse(url), Dataset(args.hosts, args.days), args.repeat)
    finally:
        if server is not None:
            server.stop()
    result.update(load_average_start=load_start, load_average_end=os.getloadavg(),
                  hosts=args.hosts, days=args.days)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


def run(wh: Warehouse, data: Dataset, repeat: int) -> dict:
    tags = host_tags(data.hosts, data.seed)
    t = time.perf_counter()
    for wide in cpu_days(data):
        wh.write_points(warehouse_points(wide, tags), label_columns=list(TAGS))
    ingest_s = time.perf_counter() - t
    wh.run_job("refresh_rollups", now=data.end + pd.Timedelta(days=1))
    before = points_bytes(wh)
    asked = queries(wh, data)
    answers_before, timing_before = {}, {}
    for name, fn in asked.items():
        answers_before[name], timing_before[name] = timed(fn, repeat)

    t = time.perf_counter()
    results = compress.compress_now(wh, "1us", now=data.end + pd.Timedelta(days=1))
    compress_s = time.perf_counter() - t
    refused = [r for r in results if r.refused]
    after = points_bytes(wh)
    timing_after, identical = {}, {}
    for name, fn in asked.items():
        answer, timing_after[name] = timed(fn, repeat)
        identical[name] = answer.equals(answers_before[name])
    total = int(before["hot_rows"])
    compressed_rows = int(after["compressed_rows"])
    return {
        "points": total,
        "ingest_points_per_s": round(total / ingest_s),
        "bytes_per_point_before": round(before["hot_bytes"] / total, 2),
        "bytes_per_point_after": round((after["compressed_bytes"] + after["hot_bytes"])
                                       / total, 2),
        "compressed_table_bytes_per_point": round(after["compressed_bytes"]
                                                  / max(compressed_rows, 1), 2),
        "segments": int(after["segments"]),
        "compressed_rows": compressed_rows,
        "compress_seconds": round(compress_s, 2),
        "compress_points_per_s": round(compressed_rows / compress_s),
        "chunks_compressed": len(results) - len(refused),
        "chunks_refused": [f"{r.chunk_name}: {r.refused}" for r in refused],
        "queries_before": timing_before,
        "queries_after": timing_after,
        "answers_identical": identical,
    }


if __name__ == "__main__":
    main()
