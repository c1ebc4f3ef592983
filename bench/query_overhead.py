"""Per-call overhead of ``wh.points`` / ``wh.frame`` / ``wh.sql`` beyond the SQL itself.

For each call form, on DuckDB and PostgreSQL: the median time of the whole call, and the
median time of its main statement alone (captured with SQLAlchemy cursor events during the
call, then re-run on the bare driver connection with the same parameters and fetched with
``fetchall``). Overhead = call - main SQL: the state statement, connection checkout,
parameter binding, the result's conversion to a DataFrame.

Data: ``--hosts`` hosts × 10 metrics (TSBS cpu field names, 11 labels), one point every
10 s for ``--hours`` hours. Prints a table and writes bench/results/query_overhead.json.

    python bench/query_overhead.py [--hosts 100] [--hours 6] [--runs 40] [--engines duckdb,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import event

from warehouse import Warehouse

FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
          "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]
TAGS = ["hostname", "region", "datacenter", "rack", "os", "arch", "team", "service",
        "service_version", "service_environment", "env"]
START = pd.Timestamp("2016-01-01T00:00Z")


def load(wh: Warehouse, hosts: int, hours: int) -> None:
    rng = np.random.default_rng(0)
    ticks = pd.date_range(START, periods=hours * 360, freq="10s")
    for h in range(hosts):
        n = len(ticks) * len(FIELDS)
        frame = pd.DataFrame({
            "metric": np.repeat([f"cpu.{f}" for f in FIELDS], len(ticks)),
            "ts": np.tile(ticks, len(FIELDS)),
            "value": rng.integers(0, 100, n).astype(float),
        })
        for i, tag in enumerate(TAGS):
            frame[tag] = f"host_{h}" if tag == "hostname" else f"{tag}_{(h + i) % 7}"
        wh.write_points(frame, label_columns=TAGS)


def forms(hosts: int) -> dict:
    one_hour = (START + pd.Timedelta("2h"), START + pd.Timedelta("3h"))
    twelve = (START, START + pd.Timedelta("6h"))
    return {
        "points 1 host 1h every=1m max (labels)": lambda wh: wh.points(
            "cpu.usage_user", *one_hour, labels={"hostname": "host_1"}, every="1m", agg="max"),
        "points 1 host 1h every=1m max with_labels=False": lambda wh: wh.points(
            "cpu.usage_user", *one_hour, labels={"hostname": "host_1"}, every="1m", agg="max",
            with_labels=False),
        "points 1 host 1h raw with_labels=False": lambda wh: wh.points(
            "cpu.usage_user", *one_hour, labels={"hostname": "host_1"}, with_labels=False),
        "points all hosts 6h every=1h mean by=hostname": lambda wh: wh.points(
            "cpu.usage_user", *twelve, every="1h", agg="mean", by=["hostname"]),
        "points ×5 metrics 1 host 1h every=1m max": lambda wh: wh.points(
            [f"cpu.{f}" for f in FIELDS[:5]], *one_hour, labels={"hostname": "host_1"},
            every="1m", agg="max", with_labels=False),
        "frame ×5 metrics 1 host 1h every=1m max": lambda wh: wh.frame(
            [f"cpu.{f}" for f in FIELDS[:5]], *one_hour, labels={"hostname": "host_1"},
            every="1m", agg="max"),
        "sql 60 rows": lambda wh: wh.sql(
            "SELECT ts, value FROM points WHERE series_id = :s AND ts >= :a AND ts < :b",
            {"s": 1, "a": one_hour[0], "b": one_hour[0] + pd.Timedelta("10min")}),
    }


def measure(wh: Warehouse, call, runs: int) -> dict:
    captured: list = []

    def before(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    call(wh)  # warm: caches, plans
    event.listen(wh.engine, "before_cursor_execute", before)
    try:
        captured.clear()
        call(wh)
        statements = list(captured)
    finally:
        event.remove(wh.engine, "before_cursor_execute", before)
    totals = []
    for _ in range(runs):
        t = time.perf_counter()
        call(wh)
        totals.append(time.perf_counter() - t)
    main = statements[-1] if statements else None  # the query runs after the state
    sql_times = []
    if main is not None:
        raw = wh.engine.raw_connection()
        try:
            for _ in range(runs):
                cursor = raw.cursor()
                t = time.perf_counter()
                cursor.execute(main[0], main[1])
                cursor.fetchall()
                sql_times.append(time.perf_counter() - t)
                cursor.close()
            try:
                raw.rollback()
            except Exception:  # noqa: BLE001 - DuckDB: no transaction was open
                pass
        finally:
            raw.close()
    # Best of the runs as well as the median: on a shared, loaded machine the minimum is
    # the steadiest estimate of what the call itself costs.
    call_ms = statistics.median(totals) * 1e3
    sql_ms = statistics.median(sql_times) * 1e3 if sql_times else 0.0
    call_min = min(totals) * 1e3
    sql_min = min(sql_times) * 1e3 if sql_times else 0.0
    return {"call_ms": round(call_ms, 3), "main_sql_ms": round(sql_ms, 3),
            "overhead_ms": round(call_ms - sql_ms, 3), "call_min_ms": round(call_min, 3),
            "main_sql_min_ms": round(sql_min, 3), "overhead_min_ms": round(call_min - sql_min, 3),
            "statements": len(statements)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--engines", default="duckdb,postgresql")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" /
                                                "query_overhead.json"))
    args = parser.parse_args()
    results, server = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            if engine == "duckdb":
                url = f"duckdb:///{tmp}/overhead.duckdb"
            else:
                from warehouse.pgserver import LocalPostgres

                server = LocalPostgres().start()
                url = server.create_database("overhead")
            wh = Warehouse(url)
            try:
                load(wh, args.hosts, args.hours)
                for name, call in forms(args.hosts).items():
                    row = {"engine": engine, "form": name, **measure(wh, call, args.runs)}
                    results.append(row)
                    print(f"{engine:10} {name:50} median: call {row['call_ms']:7.2f} SQL "
                          f"{row['main_sql_ms']:7.2f} overhead {row['overhead_ms']:6.2f} | best: "
                          f"call {row['call_min_ms']:7.2f} SQL {row['main_sql_min_ms']:7.2f} "
                          f"overhead {row['overhead_min_ms']:6.2f} ms "
                          f"({row['statements']} statements)", flush=True)
            finally:
                wh.close()
                if server is not None:
                    server.stop()
                    server = None
    out = {"hosts": args.hosts, "hours": args.hours, "runs": args.runs,
           "load_average": os.getloadavg(), "nproc": os.cpu_count(), "results": results}
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(f"load average {os.getloadavg()}; wrote {args.output}")


if __name__ == "__main__":
    main()
