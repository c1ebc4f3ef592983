"""TSBS "devops cpu-only" on the warehouse and on the raw wide-table baselines, in one run.

    python bench/tsbs/run.py [--scale 100] [--days 1] [--engines duckdb,postgresql]
                             [--pg-url URL] [--explain DIR]

For each engine: load the same generated data into the warehouse and into TSBS's wide
``cpu`` table (ingest metrics/s = rows × 10 / s), settle both, then answer every query type
on both, check the answers agree, and time them warm: after a verification pass, runs
alternate between the two systems (so load from elsewhere hits both alike) until each has
``--min-runs`` runs and ``--budget`` seconds have passed. Medians go to
bench/results/tsbs.json and a Markdown table to the screen and bench/results/tsbs.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import psycopg  # noqa: E402
from common import RESULTS  # noqa: E402
from data import Dataset, host_tags  # noqa: E402
from queries import QUERY_TYPES, QueryType, canonical, draw_instances, same_answer  # noqa: E402
from report import goals, ingest_table, machine, query_table  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from systems import (  # noqa: E402
    DuckDBBaseline,
    PostgresBaseline,
    WarehouseSystem,
    libpq_dsn,
)

from warehouse.pgserver import LocalPostgres  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_systems(engine: str, folder: Path, pg, pg_url: str | None, stamp: str,
                 write: str = "frame"):
    if engine == "duckdb":
        return (WarehouseSystem("duckdb", f"duckdb:///{folder / 'warehouse.duckdb'}", write),
                DuckDBBaseline(str(folder / "baseline.duckdb")))
    if pg is not None:
        urls = [pg.create_database(f"tsbs_{name}_{stamp}") for name in ("wh", "raw")]
    else:  # a server given by URL: two new databases on it (the role needs CREATEDB)
        urls = [_fresh_database(pg_url, f"tsbs_{name}_{stamp}") for name in ("wh", "raw")]
    return WarehouseSystem("postgresql", urls[0], write), PostgresBaseline(urls[1])


def _fresh_database(url: str, name: str) -> str:
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def timescaledb_status(url: str) -> dict:
    """TimescaleDB would be the natural third system; record why it is (not) in the run."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        row = conn.execute("SELECT name, default_version FROM pg_available_extensions "
                           "WHERE name = 'timescaledb'").fetchone()
        version = conn.execute("SHOW server_version").fetchone()[0]
    if row is None:
        return {"status": "skipped", "reason": f"extension 'timescaledb' is not available on "
                f"this PostgreSQL {version} server (pg_available_extensions has no row; it "
                f"is not packaged for Debian 12)"}
    return {"status": "skipped", "reason": f"timescaledb {row[1]} is available but this "
            f"benchmark has no hypertable loader yet"}


def storage_bytes(system) -> int:
    if system.engine == "duckdb":
        # Blocks in use, not the file's size: a file keeps the blocks a rewrite freed (the
        # compress job's sort) for reuse, so its size would count the old copy too.
        sql = "SELECT used_blocks * block_size FROM pragma_database_size()"
        if system.kind == "baseline":
            return int(system.con.execute(sql).fetchone()[0])
        with system.wh.engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar())
    url = system.url
    with psycopg.connect(libpq_dsn(url)) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def points_bytes(system) -> int:
    """The points themselves after the compress job, without the rollup tiers, catalog and
    indexes of other tables that the database's size counts: on PostgreSQL every partition of
    ``points`` (hot, all emptied by the job here), ``points_compressed`` and the pivoted copy
    ``readings``, heap, indexes and TOAST; DuckDB gives no per-table size, so there it is the
    file's blocks in use."""
    if system.engine == "duckdb":
        return storage_bytes(system)
    with psycopg.connect(libpq_dsn(system.url)) as conn:
        return conn.execute(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree('points')) + pg_total_relation_size('points_compressed')"
            " + coalesce(pg_total_relation_size(to_regclass('readings')), 0)").fetchone()[0]


def ingest(engine: str, systems, data: Dataset, compress: bool = False) -> list[dict]:
    rows = []
    for system in systems:
        log(f"{engine}: loading {data.rows:,} rows into the {system.kind}")
        seconds = system.load(data)
        start = time.perf_counter()
        system.settle()
        settle = time.perf_counter() - start
        rows.append({"engine": engine, "system": system.kind, "rows": data.rows,
                     "values": data.rows * 10, "seconds": seconds,
                     "metrics_per_s": data.rows * 10 / seconds, "settle_seconds": settle,
                     "bytes": storage_bytes(system)})
        if compress and system.kind == "warehouse":
            rollups, rows[-1]["compress_seconds"] = system.compress(data)
            if rollups is not None:
                rows[-1]["rollups_seconds"] = rollups
            system.settle()
            rows[-1]["bytes_before_compress"] = rows[-1]["bytes"]
            rows[-1]["bytes"] = storage_bytes(system)
            rows[-1]["points_bytes"] = points_bytes(system)
            log(f"{engine}: compress job {rows[-1]['compress_seconds']:.1f} s, "
                f"{rows[-1]['bytes_before_compress'] / rows[-1]['values']:.2f} -> "
                f"{rows[-1]['bytes'] / rows[-1]['values']:.2f} bytes/point, points alone "
                f"{rows[-1]['points_bytes'] / rows[-1]['values']:.2f}")
        log(f"{engine}: {system.kind} {rows[-1]['metrics_per_s']:,.0f} metrics/s")
    return rows


def run_query(query: QueryType, engine: str, wh, raw, instances, hostnames, args,
              mode: str) -> dict:
    def warehouse(p):
        return query.warehouse(wh.wh, engine, p, args.api)

    def baseline(p):
        sql, binds = query.baseline(engine, p)
        return raw.query(sql, binds)

    # Verification pass (also the warm-up): every instance answered the same by both.
    # A query whose first warehouse answer takes longer than --slow seconds is verified
    # and timed on its first instance only, once: that keeps the default run short.
    mismatch = None
    slow = False
    for i, p in enumerate(instances):
        t0 = time.perf_counter()
        ours = warehouse(p)
        slow = slow or (i == 0 and time.perf_counter() - t0 > args.slow)
        problem = same_answer(canonical(query, ours, hostnames),
                              canonical(query, baseline(p), hostnames))
        if problem and mismatch is None:
            mismatch = f"{problem} (params {p})"
        if slow:
            instances = instances[:1]
            break
    min_runs = 1 if slow else args.min_runs
    times: dict[str, list[float]] = {"wh": [], "raw": []}
    # CPU time of this process as well: on a loaded machine wall clock follows the
    # scheduler, CPU time the work. Embedded DuckDB's threads are in it; a PostgreSQL
    # server's work is not (the column is left out there).
    cpu: dict[str, list[float]] = {"wh": [], "raw": []}
    start = time.perf_counter()
    rounds = 0
    while True:
        for p in instances:
            # Alternate who goes first, so neither always runs right after the other.
            order = [("wh", warehouse), ("raw", baseline)]
            for label, f in order if rounds % 2 == 0 else reversed(order):
                t0, c0 = time.perf_counter(), time.process_time()
                f(p)
                times[label].append(time.perf_counter() - t0)
                cpu[label].append(time.process_time() - c0)
        rounds += 1
        if len(times["wh"]) >= args.max_runs or (
                len(times["wh"]) >= min_runs and time.perf_counter() - start >= args.budget):
            break
    wh_ms, raw_ms = (statistics.median(times[k]) * 1000 for k in ("wh", "raw"))
    wh_cpu, raw_cpu = (statistics.median(cpu[k]) * 1000 for k in ("wh", "raw"))
    embedded = engine == "duckdb"
    return {"engine": engine, "mode": mode, "query": query.name,
            "description": query.description,
            "via": query.via, "instances": len(instances), "runs": len(times["wh"]),
            "wh_median_ms": wh_ms, "raw_median_ms": raw_ms, "ratio": wh_ms / raw_ms,
            "wh_min_ms": min(times["wh"]) * 1000, "raw_min_ms": min(times["raw"]) * 1000,
            "wh_cpu_ms": wh_cpu, "raw_cpu_ms": raw_cpu,
            "cpu_ratio": wh_cpu / raw_cpu if embedded and raw_cpu > 0 else None,
            "load_average": os.getloadavg(),
            "slow": slow, "verified": mismatch is None, "mismatch": mismatch}


def refresh_rollups(wh: WarehouseSystem, data: Dataset) -> float:
    """Run the warehouse's ``refresh_rollups`` job up to the end of the data; seconds taken.
    After it, bucketed queries that a rollup tier answers read the tier (jobs/tiers.py)."""
    log(f"{wh.engine}: refreshing rollups")
    start = time.perf_counter()
    result = wh.wh.run_job("refresh_rollups", now=data.end)
    seconds = time.perf_counter() - start
    log(f"{wh.engine}: refresh_rollups {getattr(result, 'status', result)} in {seconds:.1f} s")
    if wh.engine == "postgresql":  # planner statistics for the new rollup rows
        wh.settle()
    return seconds


def explain(query: QueryType, engine: str, wh, raw, p, folder: Path, args) -> None:
    """Write EXPLAIN ANALYZE of every statement the warehouse ran for one instance, and of
    the baseline's statement, to ``folder/<engine>-<query>.txt``."""
    seen: list[tuple[str, object, bool]] = []  # (SQL, parameters, written with :names)

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters, False))

    # On DuckDB a query's first statement goes to the driver itself (no cursor event):
    # the backend's fetch_columns is wrapped for the call to see it as well.
    backend = wh.wh.backend
    fetch_columns = backend.fetch_columns

    def fetch_and_capture(conn, sql, params):
        if not conn.in_transaction():
            seen.append((sql, params, True))
        return fetch_columns(conn, sql, params)

    event.listen(wh.wh.engine, "before_cursor_execute", capture)
    backend.fetch_columns = fetch_and_capture
    try:
        query.warehouse(wh.wh, engine, p, args.api)
    finally:
        event.remove(wh.wh.engine, "before_cursor_execute", capture)
        del backend.fetch_columns
    prefix = "EXPLAIN ANALYZE " if engine == "duckdb" else "EXPLAIN (ANALYZE, BUFFERS) "
    parts = [f"# {engine} {query.name} {p}\n"]
    with wh.wh.engine.connect() as conn:
        for statement, parameters, bound_by_name in seen:
            result = (conn.execute(text(prefix + statement), parameters) if bound_by_name
                      else conn.exec_driver_sql(prefix + statement, parameters))
            plan = "\n".join(str(row[-1]) for row in result.fetchall())
            parts.append(f"## warehouse\n{statement}\n{parameters}\n\n{plan}\n")
        conn.rollback()
    sql, binds = query.baseline(engine, p)
    parts.append(f"## raw baseline\n{sql}\n{binds}\n\n{raw.explain(sql, binds)}\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{engine}-{query.name}.txt").write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100, help="hosts (default 100)")
    parser.add_argument("--days", type=int, default=1, help="days of data (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default="duckdb,postgresql")
    parser.add_argument("--queries", default=",".join(QUERY_TYPES))
    parser.add_argument("--instances", type=int, default=3,
                        help="random parameter sets per query type (default 3)")
    parser.add_argument("--min-runs", type=int, default=3, help="timed runs per system, at least")
    parser.add_argument("--max-runs", type=int, default=60)
    parser.add_argument("--budget", type=float, default=1.5,
                        help="seconds of timed runs per query, once --min-runs are done")
    parser.add_argument("--slow", type=float, default=2.0,
                        help="seconds; a slower warehouse answer is timed on one instance, once")
    parser.add_argument("--api", choices=("current", "proposed", "engine"), default="engine",
                        help="'engine' (default): wh.frame (one statement for many fields, "
                             "value filter in SQL) and wh.points(last=N); 'proposed': one "
                             "wh.points per field with list-valued labels; 'current' reads "
                             "every host and filters in pandas, for comparison")
    parser.add_argument("--rollups", action="store_true",
                        help="after the raw pass, run refresh_rollups and time the queries again")
    parser.add_argument("--write", choices=("frame", "points"), default="frame",
                        help="'frame' (default): the warehouse takes TSBS's rows as they are, "
                             "a row per host and instant (wh.write_frame); 'points': melted "
                             "to a row per value first (wh.write_points, melting not timed)")
    parser.add_argument("--compress", action="store_true",
                        help="after loading, run the warehouse's compress job (DuckDB: closed "
                             "chunks sorted by series and copied pivoted, a row per host and "
                             "instant; PostgreSQL: refresh_rollups, then closed chunks encoded "
                             "into segments) and report bytes per point")
    parser.add_argument("--pg-url", help="use this PostgreSQL server instead of a throwaway one")
    parser.add_argument("--explain", type=Path, help="write EXPLAIN ANALYZE files here")
    parser.add_argument("--output", default="tsbs", help="results file name (without suffix)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where the .json and .md go (default bench/results)")
    args = parser.parse_args()
    engines = args.engines.split(",")
    names = args.queries.split(",")
    unknown = [n for n in names if n not in QUERY_TYPES]
    if unknown:
        parser.error(f"unknown queries {unknown}; known: {', '.join(QUERY_TYPES)}")
    data = Dataset(args.scale, args.days, args.seed)
    tags = host_tags(data.hosts, data.seed)
    hostnames = dict(zip(tags["tags_id"], tags["hostname"]))
    began = time.perf_counter()
    facts = machine()
    ingest_rows: list[dict] = []
    query_rows: list[dict] = []
    timescaledb = None
    pg = None
    stamp = time.strftime("%Y%m%d%H%M%S")
    if "postgresql" in engines and not args.pg_url:
        pg = LocalPostgres().start()
    try:
        with tempfile.TemporaryDirectory(prefix="tsbs-") as folder:
            for engine in engines:
                systems = make_systems(engine, Path(folder), pg, args.pg_url, stamp,
                                       args.write)
                wh, raw = systems
                try:
                    if engine == "postgresql":
                        timescaledb = timescaledb_status(raw.url)
                        log(f"timescaledb: {timescaledb['reason']}")
                    ingest_rows += ingest(engine, systems, data, args.compress)
                    for mode in ["raw"] + (["rollups"] if args.rollups else []):
                        if mode == "rollups":
                            row = next(r for r in ingest_rows if r["engine"] == engine
                                       and r["system"] == "warehouse")
                            row["rollups_seconds"] = refresh_rollups(wh, data)
                        for name in names:
                            query = QUERY_TYPES[name]
                            instances = draw_instances(query, data, args.instances)
                            row = run_query(query, engine, wh, raw, instances, hostnames,
                                            args, mode)
                            query_rows.append(row)
                            log(f"{engine} {mode} {name}: warehouse {row['wh_median_ms']:.1f} "
                                f"ms, raw {row['raw_median_ms']:.1f} ms, ratio "
                                f"{row['ratio']:.2f}" + ("" if row["verified"]
                                                        else f"  MISMATCH {row['mismatch']}"))
                            if args.explain:
                                explain(query, engine, wh, raw, instances[0],
                                        args.explain / mode, args)
                finally:
                    for system in systems:
                        system.close()
    finally:
        if pg is not None:
            pg.stop()
    facts["load_average_end"] = os.getloadavg()
    elapsed = time.perf_counter() - began
    verdicts = goals(ingest_rows, [r for r in query_rows if r["mode"] == "raw"])
    if args.rollups:
        verdicts += [f"after refresh_rollups: {v}" for v in goals(
            [], [r for r in query_rows if r["mode"] == "rollups"])]
    title = (f"TSBS devops cpu-only, {data.hosts} hosts × {data.days} day(s) = {data.rows:,} "
             f"rows × 10 metrics; {facts['nproc']} × {facts['cpu_model']}, "
             f"{facts['ram_gib']} GiB RAM; warehouse loaded with "
             f"{'write_frame' if args.write == 'frame' else 'write_points'}; "
             f"load average {facts['load_average'][0]:.1f} → "
             f"{facts['load_average_end'][0]:.1f}; run took {elapsed:.0f} s")
    tables = [f"{'Raw points' if mode == 'raw' else 'After refresh_rollups'} "
              f"(warehouse api: {args.api}):\n\n"
              + query_table([r for r in query_rows if r["mode"] == mode], engines)
              for mode in dict.fromkeys(r["mode"] for r in query_rows)]
    markdown = "\n\n".join([
        f"### {title}", ingest_table(ingest_rows), *tables,
        "TimescaleDB: " + (timescaledb or {"reason": "PostgreSQL not in this run"})["reason"],
        "\n".join(f"- {v}" for v in verdicts)])
    print(markdown)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.output}.md").write_text(markdown + "\n")
    (args.results_dir / f"{args.output}.json").write_text(json.dumps({
        "benchmark": "tsbs-devops-cpu-only", "dataset": vars(data) | {"rows": data.rows},
        "args": {k: str(v) for k, v in vars(args).items()}, "machine": facts,
        "seconds": elapsed, "timescaledb": timescaledb, "ingest": ingest_rows,
        "queries": query_rows, "goals": verdicts}, indent=2, default=str))
    log(f"wrote {args.results_dir / (args.output + '.json')} and .md in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
