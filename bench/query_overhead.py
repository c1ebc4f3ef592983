"""Per-call overhead of ``wh.points`` / ``wh.frame`` / ``wh.sql`` beyond the SQL itself.

For each call form, on DuckDB and PostgreSQL: the time of the whole call, and the time of
its main statement alone (captured with SQLAlchemy cursor events during the call, then
re-run on the bare driver connection with the same parameters and fetched with
``fetchall``), measured alternately. Overhead = call - main SQL per pair (median and p95):
the state statement, connection checkout, parameter binding, the result's conversion to a
DataFrame. The load average is recorded with each form.

On PostgreSQL each form is also timed with the state statement read first (a round trip
of its own, as before) against sent with the query's statement, alternately in this process
(``state_trip_ab``).

Data: ``--hosts`` hosts × 10 metrics (TSBS cpu field names, 11 labels), one point every
10 s for ``--hours`` hours. Prints a table and writes bench/results/query_overhead.json.

    python bench/query_overhead.py [--hosts 100] [--hours 6] [--runs 40] [--engines duckdb,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import event, text

from warehouse import Warehouse
from warehouse.backends.base import Backend

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
        "frame 1 metric 1 host 1h every=1m max by=[] (TSBS single-groupby-1-1-1)":
            lambda wh: wh.frame(["cpu.usage_user"], *one_hour, labels={"hostname": ["host_1"]},
                                every="1m", agg="max", by=[]),
        "points all hosts every=1m max by=[] last=5 (TSBS groupby-orderby-limit)":
            lambda wh: wh.points("cpu.usage_user", None, twelve[1] - pd.Timedelta("17min"),
                                 every="1m", agg="max", by=[], last=5),
        "sql 60 rows": lambda wh: wh.sql(*SQL_60_ROWS),
    }


SQL_60_ROWS = ("SELECT ts, value FROM points WHERE series_id = :s AND ts >= :a AND ts < :b",
               {"s": 1, "a": START + pd.Timedelta("2h"), "b": START + pd.Timedelta("2h10min")})


def driver_statement(wh: Warehouse, sql: str, params: dict) -> tuple:
    """``sql`` with ``:name`` binds as the driver takes it, for timing it alone: wh.sql
    runs on a connection of its own, which the cursor events do not see."""
    compiled = text(sql).compile(dialect=wh.engine.dialect)
    if compiled.positiontup:
        return str(compiled), [params[name] for name in compiled.positiontup]
    return str(compiled), params


def measure(wh: Warehouse, call, runs: int, alone: tuple | None = None) -> dict:
    """Time the call and its main statement alone, alternately, ``runs`` times each: on a
    shared machine whose load changes by the second, each pair sees the same load, so the
    per-pair difference (the overhead) is steadier than the difference of two medians."""
    captured: list = []

    def before(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    fetched: list = []
    fetch_columns = wh.backend.fetch_columns

    def fetch(conn, sql, params):  # the main statement may go to the driver directly
        fetched.append((sql, params))
        return fetch_columns(conn, sql, params)

    call(wh)  # warm: caches, plans
    event.listen(wh.engine, "before_cursor_execute", before)
    wh.backend.fetch_columns = fetch
    try:
        captured.clear()
        call(wh)
        statements = list(captured)
    finally:
        event.remove(wh.engine, "before_cursor_execute", before)
        del wh.backend.fetch_columns
    # The main statement is the last one fetched (it runs after any state read).
    main = (driver_statement(wh, *fetched[-1]) if fetched
            else statements[-1] if statements else alone)
    # Statements through SQLAlchemy (state, series, a main statement inside a transaction)
    # and main statements fetched (through SQLAlchemy or straight on the driver).
    statements = f"{len(statements)} via SQLAlchemy, {len(fetched)} fetched"
    raw = wh.engine.raw_connection() if main is not None else None
    totals, sql_times, cpu_totals, cpu_sql = [], [], [], []
    load_before = os.getloadavg()
    try:
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            call(wh)
            totals.append(time.perf_counter() - t)
            cpu_totals.append(time.process_time() - c)
            if raw is None:
                continue
            cursor = raw.cursor()
            t, c = time.perf_counter(), time.process_time()
            cursor.execute(main[0], main[1])
            cursor.fetchall()
            sql_times.append(time.perf_counter() - t)
            cpu_sql.append(time.process_time() - c)
            cursor.close()
            try:
                raw.rollback()
            except Exception:  # noqa: BLE001 - DuckDB: no transaction was open
                pass
    finally:
        if raw is not None:
            raw.close()
    overheads = ([a - b for a, b in zip(totals, sql_times)] if sql_times else totals)
    # CPU time of this process (all its threads: DuckDB's too) is what a busy machine
    # disturbs least; PostgreSQL's server-side work is not in it.
    cpu_overheads = ([a - b for a, b in zip(cpu_totals, cpu_sql)] if cpu_sql else cpu_totals)
    ms = lambda xs, q: round(float(np.quantile(xs, q)) * 1e3, 3)  # noqa: E731
    return {"call_ms": ms(totals, 0.5), "call_p95_ms": ms(totals, 0.95),
            "main_sql_ms": ms(sql_times, 0.5) if sql_times else 0.0,
            "overhead_ms": ms(overheads, 0.5), "overhead_p95_ms": ms(overheads, 0.95),
            "call_min_ms": round(min(totals) * 1e3, 3),
            "call_cpu_ms": ms(cpu_totals, 0.5), "overhead_cpu_ms": ms(cpu_overheads, 0.5),
            "overhead_cpu_p95_ms": ms(cpu_overheads, 0.95),
            "statements": statements,
            "load_average": [round(x, 2) for x in load_before]}


def state_trip_ab(wh: Warehouse, call, runs: int) -> dict | None:
    """Where the engine sends the state statement with the query's own (PostgreSQL), the call
    as it is against the call with that refused (state read first: a round trip more),
    alternately in this process, so both see the same load (docs/query.md)."""
    backend_class = type(wh.backend)
    if backend_class.defer_statement is Backend.defer_statement:
        return None
    sent_with = backend_class.defer_statement

    def read_first(self, conn, sql):
        return False

    times = {"state sent with the statement": ([], []), "state read first": ([], [])}
    load_before = os.getloadavg()
    try:
        for _ in range(runs):
            for mode, method in (("state read first", read_first),
                                 ("state sent with the statement", sent_with)):
                backend_class.defer_statement = method
                t, c = time.perf_counter(), time.process_time()
                call(wh)
                times[mode][0].append(time.perf_counter() - t)
                times[mode][1].append(time.process_time() - c)
    finally:
        backend_class.defer_statement = sent_with
    ms = lambda xs, q: round(float(np.quantile(xs, q)) * 1e3, 3)  # noqa: E731
    return {mode: {"call_ms": ms(wall, 0.5), "call_p95_ms": ms(wall, 0.95),
                   "call_cpu_ms": ms(cpu, 0.5)} for mode, (wall, cpu) in times.items()} | {
        "load_average": [round(x, 2) for x in load_before]}


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
                    alone = (driver_statement(wh, *SQL_60_ROWS) if name.startswith("sql")
                             else None)
                    row = {"engine": engine, "form": name,
                           **measure(wh, call, args.runs, alone)}
                    results.append(row)
                    print(f"{engine:10} {name:50} call {row['call_ms']:7.2f} (p95 "
                          f"{row['call_p95_ms']:7.2f}) SQL {row['main_sql_ms']:7.2f} overhead "
                          f"{row['overhead_ms']:6.2f} (p95 {row['overhead_p95_ms']:6.2f}) | CPU: "
                          f"call {row['call_cpu_ms']:6.2f} overhead {row['overhead_cpu_ms']:6.2f} "
                          f"(p95 {row['overhead_cpu_p95_ms']:6.2f}) ms, "
                          f"{row['statements']}, load {row['load_average'][0]}",
                          flush=True)
                    ab = None if name.startswith("sql") else state_trip_ab(wh, call, args.runs)
                    if ab is not None:
                        row["state_trip_ab"] = ab
                        print(f"{'':10} {'  same process, state read first / sent with it':50}"
                              f" call {ab['state read first']['call_ms']:7.2f} / "
                              f"{ab['state sent with the statement']['call_ms']:7.2f} ms, CPU "
                              f"{ab['state read first']['call_cpu_ms']:6.2f} / "
                              f"{ab['state sent with the statement']['call_cpu_ms']:6.2f} ms",
                              flush=True)
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
