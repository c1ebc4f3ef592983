"""Ingest benchmark: points/s through ``Warehouse.write_points`` against baselines run in the
same process — (a) raw DuckDB INSERT of the same DataFrame, (b) raw binary COPY of a
pre-encoded stream into the same PostgreSQL table, (c) naive row-by-row INSERTs — plus
bytes per point on each engine. Prints a Markdown table, writes bench/results/ingest.json.

    python bench/ingest.py --points 1000000,10000000 [--engines duckdb,postgresql]
    python bench/ingest.py --small 200   # fixed cost of small writes: p50/p95 per call
    python bench/ingest.py --tsbs 3 [--hosts 100]   # TSBS days against the raw wide tables

``--small N`` times N calls each of ``write_points`` of 1, 10 and 1,000 points and
``write_runs`` of one run, against a raw INSERT of one point on the same connection pool in
the same process, and records the load average (the machine is shared).

``--tsbs DAYS`` loads TSBS "devops cpu-only" days (bench/tsbs/data.py, 100 hosts: 8.64M
metrics a day) one ``write_points(df, label_columns=TAGS)`` call per day, alternating each day
with the raw baseline of bench/tsbs/run.py in the same process (DuckDB: INSERT of the wide
DataFrame; PostgreSQL: binary COPY into TSBS's indexed wide table), and reports per engine the
median and p95 of metrics/s per day, this process's and (PostgreSQL) the server's CPU seconds
per day and the load average. On PostgreSQL a second warehouse writes each day with its
chunk made ahead (no new-chunk loading: the path before it), in the same rotation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, timer, write_results  # noqa: E402

from warehouse import Warehouse  # noqa: E402
from warehouse.backends import postgresql_write  # noqa: E402
from warehouse.backends.postgresql_write import points_copy_payload  # noqa: E402
from warehouse.pgserver import LocalPostgres  # noqa: E402

HOSTS, METRICS = 100, 10
BATCH = 1_000_000


def make_points(n: int, offset_days: int = 0, seed: int = 0) -> pd.DataFrame:
    """n points over HOSTS × METRICS series every 10 s: random walks, like host metrics."""
    series = HOSTS * METRICS
    per = n // series
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-10-01", tz="UTC") + pd.Timedelta(days=offset_days)
    ts = pd.date_range(start, periods=per, freq="10s")
    values = np.cumsum(rng.normal(0, 1, (series, per)), axis=1).ravel() + 50
    return pd.DataFrame({
        "metric": np.repeat([f"cpu.usage_{i}" for i in range(METRICS)], HOSTS * per),
        "host": np.tile(np.repeat([f"host_{h}" for h in range(HOSTS)], per), METRICS),
        "ts": np.tile(ts, series),
        "value": values,
    })


def batches(n: int):
    for i, start in enumerate(range(0, n, BATCH)):
        yield make_points(min(BATCH, n - start), offset_days=i * 2, seed=i)


def points_bytes(wh: Warehouse, path: Path | None) -> int:
    if path is not None:  # DuckDB: the file is the storage
        with wh.engine.begin() as conn:
            conn.execute(text("CHECKPOINT"))
        return path.stat().st_size
    with wh.engine.connect() as conn:
        return conn.execute(text("SELECT sum(pg_total_relation_size(relid)) "
                                 "FROM pg_partition_tree('points')")).scalar_one()


def bench_engine(engine: str, n: int, url: str, path: Path | None) -> list[dict]:
    rows = []
    wh = Warehouse(url)
    written = 0
    elapsed = 0.0
    for frame in batches(n):
        with timer() as t:
            written += wh.write_points(frame, label_columns=["host"]).written
        elapsed += t()
    assert written == n, (written, n)
    size = points_bytes(wh, path)
    rows.append({"engine": engine, "points": n, "path": "write_points (label columns)",
                 "seconds": elapsed, "points_per_s": n / elapsed, "bytes_per_point": size / n})
    replay = make_points(min(BATCH, n), seed=0)
    with timer() as t:
        again = wh.write_points(replay, label_columns=["host"])
    assert again.written == 0
    rows.append({"engine": engine, "points": len(replay), "path": "write_points replay (all dups)",
                 "seconds": t(), "points_per_s": len(replay) / t()})
    if n == BATCH:
        dicts = make_points(BATCH, offset_days=100, seed=9)
        dicts["labels"] = [{"host": h} for h in dicts.pop("host")]
        with timer() as t:
            wh.write_points(dicts)
        rows.append({"engine": engine, "points": BATCH, "path": "write_points (labels dicts)",
                     "seconds": t(), "points_per_s": BATCH / t()})
    wh.close()
    return rows


def baseline_duckdb(n: int, folder: Path) -> list[dict]:
    """(a) DuckDB INSERT of the same DataFrames (series ids precomputed), no validation or dedup."""
    con = duckdb.connect(str(folder / "raw.duckdb"))
    con.execute("CREATE TABLE points (ts TIMESTAMPTZ, series_id INTEGER, value DOUBLE, run_id UUID)")
    elapsed = 0.0
    for frame in batches(n):
        ids = pd.factorize(frame["metric"] + "/" + frame["host"])[0].astype("i4")
        staged = pd.DataFrame({"ts": frame["ts"], "series_id": ids, "value": frame["value"]})
        con.register("staged", staged)
        with timer() as t:
            con.execute("INSERT INTO points SELECT ts, series_id, value, NULL FROM staged")
        elapsed += t()
    con.execute("CHECKPOINT")
    con.close()
    size = (folder / "raw.duckdb").stat().st_size
    return [{"engine": "duckdb", "points": n, "path": "baseline: raw INSERT of DataFrame",
             "seconds": elapsed, "points_per_s": n / elapsed, "bytes_per_point": size / n}]


def baseline_copy(n: int, url: str) -> list[dict]:
    """(b) COPY BINARY of pre-encoded streams into the same partitioned points table."""
    wh = Warehouse(url)
    elapsed = 0.0
    for frame in batches(n):
        ids = pd.factorize(frame["metric"] + "/" + frame["host"])[0].astype("i4") + 1
        batch = pd.DataFrame({"ts": frame["ts"], "series_id": ids, "value": frame["value"],
                              "run_id": None})
        ts_us = batch["ts"].to_numpy(dtype="datetime64[us]").view("i8")
        with wh.engine.begin() as conn:
            wh.backend.ensure_chunks(conn, "points", ts_us)
        payload = points_copy_payload(batch)
        with wh.engine.begin() as conn, timer() as t:
            raw = conn.connection.driver_connection
            with raw.cursor().copy("COPY points (ts, series_id, value, run_id) FROM STDIN "
                                   "(FORMAT BINARY)") as copy:
                copy.write(payload)
        elapsed += t()
    wh.close()
    return [{"engine": "postgresql", "points": n, "path": "baseline: raw COPY BINARY",
             "seconds": elapsed, "points_per_s": n / elapsed}]


def baseline_naive(engine: str, url: str, rows: int) -> list[dict]:
    """(c) One INSERT statement per row, as a first attempt would do it."""
    wh = Warehouse(url)
    frame = make_points(HOSTS * METRICS * max(rows // (HOSTS * METRICS), 1), offset_days=300)
    with wh.engine.begin() as conn:
        wh.backend.ensure_chunks(conn, "points",
                                 frame["ts"].to_numpy(dtype="datetime64[us]").view("i8"))
    ids = pd.factorize(frame["metric"] + "/" + frame["host"])[0] + 1
    records = list(zip(frame["ts"], ids, frame["value"]))
    with wh.engine.begin() as conn, timer() as t:
        for ts, sid, value in records:
            conn.execute(text("INSERT INTO points (ts, series_id, value) VALUES (:t, :s, :v)"),
                         {"t": ts, "s": int(sid), "v": float(value)})
    wh.close()
    return [{"engine": engine, "points": len(records), "path": "baseline: naive row INSERTs",
             "seconds": t(), "points_per_s": len(records) / t()}]


def small_points(n: int, call: int) -> list[dict]:
    """n points of n series, newer than every earlier call (the live-recording shape)."""
    ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(seconds=call)
    return [{"metric": "small.rows", "labels": {"step": f"s{i}"}, "ts": ts, "value": float(i)}
            for i in range(n)]


def one_run(call: int) -> list[dict]:
    started = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(seconds=call)
    return [{"run_id": str(uuid.UUID(int=call + 1)), "recipe": "small", "started_at": started,
             "finished_at": started + pd.Timedelta(seconds=1), "status": "failed",
             "error_message": "boom"}]


def bench_small(engine: str, url: str, calls: int) -> list[dict]:
    """Per-call latency of small writes against a raw one-row INSERT, same process."""
    wh = Warehouse(url)
    with wh.engine.begin() as conn:  # make sure the raw baseline has a chunk to land in
        wh.backend.ensure_chunks(conn, "points", np.array(
            [pd.Timestamp("2026-11-01", tz="UTC").value // 1000], dtype="i8"))
    # Warm up: series, chunks and caches, as a live recorder would have them.
    for n in (1, 10, 1000):
        wh.write_points(small_points(n, 0))
    wh.write_runs(one_run(0))

    def raw(call):
        with wh.engine.begin() as conn:
            conn.execute(text("INSERT INTO points (ts, series_id, value) VALUES (:t, 1, 1.0)"),
                         {"t": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(seconds=call)})
    cases = [("raw INSERT of one point", raw)]
    for n in (1, 10, 1000):
        cases.append((f"write_points of {n}", lambda call, n=n: wh.write_points(
            small_points(n, call))))
    cases.append(("write_runs of 1", lambda call: wh.write_runs(one_run(call))))
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    load_before = os.getloadavg()
    for call in range(1, calls + 1):  # interleaved, so load drifts hit every case alike
        for name, run in cases:
            with timer() as t:
                run(call)
            samples[name].append(t())
    load_after = os.getloadavg()
    wh.close()
    rows = []
    for name, seconds in samples.items():
        ms = np.array(seconds) * 1000
        rows.append({"engine": engine, "path": name, "calls": calls,
                     "p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                     "load": f"{load_before[0]:.1f}->{load_after[0]:.1f}"})
    return rows


def server_cpu_s(pg: LocalPostgres | None) -> float:
    """CPU seconds used so far by every process of the local PostgreSQL server (postmaster,
    backends, autovacuum, WAL writer): the server's share of a load. 0 without a server."""
    if pg is None:
        return 0.0
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def bench_tsbs(engine: str, urls: dict[str, str], days: int, hosts: int,
               pg: LocalPostgres | None = None) -> list[dict]:
    """Per day: the warehouse's write and the raw wide-table load of the same readings, in
    rotating order; wall seconds, this process's CPU seconds and the server's CPU seconds of
    each. On PostgreSQL a second warehouse (its own database) writes the same day with every
    chunk made ahead (the path before new-chunk loading), as a same-process baseline."""
    from data import TAGS, Dataset, cpu_days, host_tags, warehouse_points

    data = Dataset(hosts, days)
    tags = host_tags(hosts)
    warehouses = {name: Warehouse(url) for name, url in urls.items() if name != "raw"}
    raw_load = RawWideTable(engine, urls["raw"])
    samples: dict[str, list[tuple[float, float, float]]] = {
        **{name: [] for name in warehouses}, "raw": []}
    load_before = os.getloadavg()

    def write(name: str, points: pd.DataFrame):
        if name != "warehouse, chunks made ahead":
            return warehouses[name].write_points(points, label_columns=list(TAGS))
        saved = postgresql_write.NEW_CHUNK_ROWS
        postgresql_write.NEW_CHUNK_ROWS = 2**62
        try:
            return warehouses[name].write_points(points, label_columns=list(TAGS))
        finally:
            postgresql_write.NEW_CHUNK_ROWS = saved

    names = list(samples)
    for day, wide in enumerate(cpu_days(data)):
        points = warehouse_points(wide, tags)
        # Rotate which goes first, so a load swing hits each alike.
        for name in names[day % len(names):] + names[:day % len(names)]:
            cpu, server = time.process_time(), server_cpu_s(pg)
            with timer() as t:
                result = raw_load(wide) if name == "raw" else write(name, points)
            samples[name].append((t(), time.process_time() - cpu, server_cpu_s(pg) - server))
            if name != "raw":
                assert result.written == len(points), result
        del points, wide
    load_after = os.getloadavg()
    for wh in warehouses.values():
        wh.close()
    raw_load.close()
    per_day = hosts * (data.rows // (hosts * days)) * 10  # metrics (values) per day
    rows = []
    for name, runs in samples.items():
        seconds = np.array([s for s, _, _ in runs])
        rows.append({"engine": engine, "path": f"tsbs {hosts} hosts: {name}", "days": days,
                     "metrics_per_s": float(per_day / np.median(seconds)),
                     "seconds_p50": float(np.median(seconds)),
                     "seconds_p95": float(np.percentile(seconds, 95)),
                     "cpu_s_p50": float(np.median([c for _, c, _ in runs])),
                     "server_cpu_s_p50": float(np.median([s for _, _, s in runs])),
                     "load": f"{load_before[0]:.1f}->{load_after[0]:.1f}"})
    for row in rows[:-1]:
        row["vs_raw"] = row["metrics_per_s"] / rows[-1]["metrics_per_s"]
    return rows


class RawWideTable:
    """bench/tsbs/run.py's raw baseline, one day per call: TSBS's wide ``cpu`` table, loaded
    by INSERT of the DataFrame (DuckDB) or binary COPY with TSBS's two indexes (PostgreSQL)."""

    def __init__(self, engine: str, url: str):
        from systems import libpq_dsn, tsbs_ddl

        self.engine = engine
        if engine == "duckdb":
            self.con = duckdb.connect(url)
        else:
            import psycopg
            self.con = psycopg.connect(libpq_dsn(url), autocommit=True)
        for statement in tsbs_ddl(engine)[1:]:  # the cpu table; tags are not timed anyway
            self.con.execute(statement)
        if engine != "duckdb":
            self.con.execute('CREATE INDEX cpu_tags_id_time_idx ON cpu (tags_id, "time" DESC)')
            self.con.execute('CREATE INDEX cpu_time_idx ON cpu ("time" DESC)')

    def __call__(self, wide: pd.DataFrame) -> None:
        from data import METRICS
        from systems import wide_copy_payload

        if self.engine == "duckdb":
            self.con.register("cpu_frame", wide)
            self.con.execute("INSERT INTO cpu SELECT * FROM cpu_frame")
            self.con.unregister("cpu_frame")
            return
        payload = wide_copy_payload(wide)
        with self.con.transaction(), self.con.cursor().copy(
                f"COPY cpu (time, tags_id, {', '.join(METRICS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(payload)

    def close(self) -> None:
        self.con.close()


def main_tsbs(days: int, hosts: int, engines: list[str], pg_url: str | None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "tsbs"))
    rows: list[dict] = []
    pg = LocalPostgres().start() if "postgresql" in engines and not pg_url else None
    try:
        for engine in engines:
            with tempfile.TemporaryDirectory() as folder:
                if engine == "duckdb":
                    urls = {"warehouse": f"duckdb:///{Path(folder) / 'wh.duckdb'}",
                            "raw": str(Path(folder) / "raw.duckdb")}
                elif pg is not None:
                    stamp = int(time.time())
                    urls = {"warehouse": pg.create_database(f"tsbs_wh_{stamp}"),
                            "warehouse, chunks made ahead":
                                pg.create_database(f"tsbs_wh_ahead_{stamp}"),
                            "raw": pg.create_database(f"tsbs_raw_{stamp}")}
                else:
                    raise SystemExit("--tsbs on PostgreSQL needs a local server (no --pg-url): "
                                     "it makes fresh databases")
                rows += bench_tsbs(engine, urls, days, hosts,
                                   pg if engine == "postgresql" else None)
                print(f"done: {engine}", file=sys.stderr)
    finally:
        if pg is not None:
            pg.stop()
    table = print_table(rows, ["engine", "path", "days", "metrics_per_s", "vs_raw", "seconds_p50",
                               "seconds_p95", "cpu_s_p50", "server_cpu_s_p50", "load"])
    print(f"\nwrote {write_results('ingest_tsbs', rows, {'markdown': table})}")


def main_small(calls: int, engines: list[str], pg_url: str | None) -> None:
    rows: list[dict] = []
    pg = LocalPostgres().start() if "postgresql" in engines and not pg_url else None
    try:
        for engine in engines:
            with tempfile.TemporaryDirectory() as folder:
                url = (f"duckdb:///{Path(folder) / 'small.duckdb'}" if engine == "duckdb"
                       else pg_url or pg.create_database(f"small_{int(time.time())}"))
                rows += bench_small(engine, url, calls)
    finally:
        if pg is not None:
            pg.stop()
    table = print_table(rows, ["engine", "path", "calls", "p50_ms", "p95_ms", "load"])
    print(f"\nwrote {write_results('ingest_small', rows, {'markdown': table})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="1000000,10000000")
    parser.add_argument("--engines", default="duckdb,postgresql")
    parser.add_argument("--naive-rows", type=int, default=5000)
    parser.add_argument("--pg-url", default=os.environ.get("WAREHOUSE_BENCH_PG_URL"))
    parser.add_argument("--small", type=int, default=0,
                        help="time this many small writes of each kind instead")
    parser.add_argument("--tsbs", type=int, default=0,
                        help="load this many TSBS days instead, against the raw wide tables")
    parser.add_argument("--hosts", type=int, default=100, help="TSBS hosts (with --tsbs)")
    args = parser.parse_args()
    if args.tsbs:
        main_tsbs(args.tsbs, args.hosts, args.engines.split(","), args.pg_url)
        return
    if args.small:
        main_small(args.small, args.engines.split(","), args.pg_url)
        return
    sizes = [int(s) for s in args.points.split(",")]
    engines = args.engines.split(",")
    rows: list[dict] = []
    pg = None
    if "postgresql" in engines and not args.pg_url:
        pg = LocalPostgres().start()
    try:
        for n in sizes:
            for engine in engines:
                with tempfile.TemporaryDirectory() as folder:
                    folder = Path(folder)
                    if engine == "duckdb":
                        path = folder / "wh.duckdb"
                        rows += bench_engine(engine, n, f"duckdb:///{path}", path)
                        rows += baseline_duckdb(n, folder)
                        if n == sizes[0]:
                            rows += baseline_naive(engine, f"duckdb:///{folder / 'naive.duckdb'}",
                                                   args.naive_rows)
                    else:
                        def fresh(name, n=n):
                            if pg is not None:
                                return pg.create_database(f"{name}_{n}_{int(time.time())}")
                            return args.pg_url
                        rows += bench_engine(engine, n, fresh("bench"), None)
                        rows += baseline_copy(n, fresh("copy"))
                        if n == sizes[0]:
                            rows += baseline_naive(engine, fresh("naive"), args.naive_rows)
                print(f"done: {engine} {n:,}", file=sys.stderr)
    finally:
        if pg is not None:
            pg.stop()
    # Ratio of each path to the raw baseline of its engine at the same size.
    for row in rows:
        base = next((r for r in rows if r["engine"] == row["engine"] and r["points"] == row["points"]
                     and r["path"].startswith("baseline: raw")), None)
        row["vs_raw"] = row["points_per_s"] / base["points_per_s"] if base else None
    table = print_table(rows, ["engine", "points", "path", "seconds", "points_per_s",
                               "vs_raw", "bytes_per_point"])
    print(f"\nwrote {write_results('ingest', rows, {'markdown': table})}")


if __name__ == "__main__":
    main()
