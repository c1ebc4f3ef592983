"""Closed-chunk compression on TSBS devops data (issue 15; docs/tsbs.md "Compression").

Loads ``--hosts`` × ``--days`` of TSBS cpu data (bench/tsbs/data.py) into a fresh PostgreSQL
warehouse (a throwaway local server, or ``--url``), rolls it up, then measures:

* bytes per point of ``points`` (heap + indexes, all partitions) before, and of
  ``points_compressed`` plus what stays hot after the compress job;
* compression speed: points encoded per second of the job, and per CPU second of the
  server's processes (with the throwaway server; the machine is shared, so wall time moves
  with the load while CPU time barely does);
* the same for the encoder of an older schema revision (``--baseline-revision``, default
  0011: the encoder before migration 0012) on a second database of the same server loaded
  with the same data, run just before in the same process;
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

from tsbs.data import METRICS, TAGS, Dataset, cpu_days, host_tags, warehouse_points  # noqa: E402

from warehouse import Warehouse  # noqa: E402
from warehouse.jobs import compress  # noqa: E402


def points_bytes(wh: Warehouse) -> dict:
    """Rows and bytes of points, hot (``warehouse info``) and compressed."""
    with wh.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
    hot = wh.info()["tables"].set_index("table").loc["points"]
    return {"hot_rows": int(hot["rows"]), "hot_bytes": int(hot["bytes"]),
            **compress.compression_state(wh)}


def value_forms(wh: Warehouse) -> dict:
    """Segments per form of their values (integer[] of whole numbers or of decimals, real[],
    float8[]; migration 0012)."""
    with wh.engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT CASE WHEN vals_decimals = 0 THEN 'integer' WHEN vals_decimals > 0 "
            "THEN 'decimal' WHEN vals_real IS NOT NULL THEN 'real' ELSE 'float8' END, count(*) "
            "FROM points_compressed GROUP BY 1")).fetchall())


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
        # TSBS high-cpu-1: readings of one host where usage_user > 90, with all 10 fields
        "high-cpu-1 (frame where=)": lambda: wh.frame(
            [f"cpu.{m}" for m in METRICS], start=mid, end=mid + pd.Timedelta(hours=12),
            labels=host, where="cpu.usage_user > 90"),
        # TSBS groupby-orderby-limit: the last 5 one-minute max buckets before a time
        "last 5 minute buckets, all hosts": lambda: wh.points(
            "cpu.usage_user", end=mid, every="1m", agg="max", last=5, with_labels=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--url", default=None, help="a PostgreSQL database (default: a "
                                                    "throwaway local server)")
    parser.add_argument("--engine", choices=("postgresql", "duckdb"), default="postgresql",
                        help="duckdb: measure re-sorting closed ranges by (series_id, ts)")
    parser.add_argument("--out", default=None, help="default: bench/results/compress[_duckdb].json")
    parser.add_argument("--baseline-revision", default="0011",
                        help="also time the encoder of this schema revision (throwaway server "
                             "only; '' to skip)")
    args = parser.parse_args()
    out = args.out or str(Path(__file__).parent / "results" / (
        "compress.json" if args.engine == "postgresql" else "compress_duckdb.json"))
    load_start = os.getloadavg()
    server = None
    url = args.url
    if args.engine == "duckdb":
        import tempfile

        folder = tempfile.mkdtemp(prefix="bench_compress_")
        result = run_resort(Warehouse(f"duckdb:///{folder}/w.duckdb"),
                            Dataset(args.hosts, args.days), args.repeat)
        url = ""
    elif url is None:
        from warehouse.pgserver import LocalPostgres

        server = LocalPostgres().start()
        url = server.create_database("bench_compress")
    try:
        if url:
            data = Dataset(args.hosts, args.days)
            cpu = (lambda: server_cpu_seconds(server.data)) if server else None
            baseline = None
            if server is not None and args.baseline_revision:
                old = Warehouse(server.create_database("bench_compress_baseline"), migrate=False)
                old.migrate(args.baseline_revision)
                baseline = {"revision": args.baseline_revision,
                            **compress_speed(old, data, cpu)}
            result = run(Warehouse(url), data, args.repeat, cpu)
            if baseline is not None:
                result["baseline"] = baseline
    finally:
        if server is not None:
            server.stop()
    result.update(engine=args.engine, load_average_start=load_start,
                  load_average_end=os.getloadavg(), hosts=args.hosts, days=args.days)
    Path(out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


def load(wh: Warehouse, data: Dataset) -> float:
    """Write the TSBS data; seconds taken."""
    tags = host_tags(data.hosts, data.seed)
    t = time.perf_counter()
    for wide in cpu_days(data):
        wh.write_points(warehouse_points(wide, tags), label_columns=list(TAGS))
    return time.perf_counter() - t


def run_resort(wh: Warehouse, data: Dataset, repeat: int) -> dict:
    """DuckDB: the same queries before and after every closed range is rewritten sorted by
    (series_id, ts) (delete and insert in one transaction, then CHECKPOINT), so row-group
    zone maps on series_id can skip other hosts' rows."""
    load(wh, data)
    asked = queries(wh, data)
    with wh.engine.connect() as conn:
        sid = conn.execute(text(
            "SELECT series_id FROM series WHERE metric = 'cpu.usage_user' "
            "AND json_extract_string(labels, '$.hostname') = 'host_1'")).scalar_one()
    mid = data.start + pd.Timedelta(hours=30)

    def one_series_sql():  # the SQL alone: where zone maps would show
        with wh.engine.connect() as conn:
            return pd.DataFrame(conn.execute(text(
                "SELECT max(value) AS m, count(*) AS n FROM points WHERE series_id = :s "
                "AND ts >= :a AND ts < :b"),
                {"s": sid, "a": mid, "b": mid + pd.Timedelta(hours=12)}).fetchall())

    asked["1-host 12 h max, SQL only"] = one_series_sql
    answers_before, timing_before = {}, {}
    for name, fn in asked.items():
        answers_before[name], timing_before[name] = timed(fn, repeat)
    t = time.perf_counter()
    with wh.engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE sorted AS SELECT * FROM points "
                          "ORDER BY series_id, ts"))
        conn.execute(text("DELETE FROM points"))
        conn.execute(text("INSERT INTO points SELECT * FROM sorted"))
        conn.execute(text("DROP TABLE sorted"))
    with wh.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
    resort_s = time.perf_counter() - t
    timing_after, identical = {}, {}
    for name, fn in asked.items():
        answer, timing_after[name] = timed(fn, repeat)
        identical[name] = answer.equals(answers_before[name])
    points = int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])
    return {"points": points, "resort_seconds": round(resort_s, 2),
            "resort_points_per_s": round(points / resort_s),
            "queries_before": timing_before, "queries_after": timing_after,
            "answers_identical": identical}


def server_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds of a local server so far: the postmaster, its live processes, and (the
    postmaster's children times) those that have exited, such as parallel workers."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process has just exited
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def compress_all(wh: Warehouse, data: Dataset, cpu=None) -> tuple[list, dict]:
    """Compress every chunk of ``data`` at once: the chunk results and the speed (rows,
    seconds, points per second, and per server CPU second when ``cpu``, a CPU-seconds clock,
    is given)."""
    cpu_start = cpu() if cpu else None
    t = time.perf_counter()
    results = compress.compress_now(wh, "1us", now=data.end + pd.Timedelta(days=1))
    seconds = time.perf_counter() - t
    rows = sum(r.rows for r in results)
    speed = {"compressed_rows": rows, "compress_seconds": round(seconds, 2),
             "compress_points_per_s": round(rows / seconds)}
    if cpu:
        cpu_s = cpu() - cpu_start
        speed.update(compress_server_cpu_seconds=round(cpu_s, 2),
                     compress_points_per_cpu_s=round(rows / max(cpu_s, 1e-9)))
    return results, speed


def compress_speed(wh: Warehouse, data: Dataset, cpu=None) -> dict:
    """Load ``data``, roll it up and compress it: the speed (:func:`compress_all`)."""
    load(wh, data)
    wh.run_job("refresh_rollups", now=data.end + pd.Timedelta(days=1))
    return compress_all(wh, data, cpu)[1]


def run(wh: Warehouse, data: Dataset, repeat: int, cpu=None) -> dict:
    ingest_s = load(wh, data)
    wh.run_job("refresh_rollups", now=data.end + pd.Timedelta(days=1))
    before = points_bytes(wh)
    asked = queries(wh, data)
    answers_before, timing_before = {}, {}
    for name, fn in asked.items():
        answers_before[name], timing_before[name] = timed(fn, repeat)

    results, speed = compress_all(wh, data, cpu)
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
        **speed,
        "value_forms": value_forms(wh),
        "chunks_compressed": len(results) - len(refused),
        "chunks_refused": [f"{r.chunk_name}: {r.refused}" for r in refused],
        "queries_before": timing_before,
        "queries_after": timing_after,
        "answers_identical": identical,
    }


if __name__ == "__main__":
    main()
