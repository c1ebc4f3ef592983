"""The systems under test, each able to load a :class:`~data.Dataset` and run SQL or the API.

- :class:`WarehouseSystem` — the warehouse (narrow ``points`` + ``series``), written through
  ``Warehouse.write_points(df, label_columns=TAGS)``, queried through ``Warehouse.points``
  and ``Warehouse.sql``.
- :class:`DuckDBBaseline` — what a DuckDB user would build for TSBS: the wide ``cpu`` table
  (time, tags_id, 10 metrics) and a ``tags`` table, loaded by inserting the DataFrame.
- :class:`PostgresBaseline` — TSBS's PostgreSQL schema (what its TimescaleDB loader makes,
  minus the hypertable): the same two tables, an index on (tags_id, time DESC) and one on
  (time DESC), loaded with COPY ... (FORMAT BINARY).

Ingest timings cover only the write calls (encoding included), not data generation.
After loading, each system is settled untimed the same way: CHECKPOINT on DuckDB,
VACUUM ANALYZE on PostgreSQL, so queries see compressed blocks and planner statistics.
"""

from __future__ import annotations

import re
import time

import duckdb
import numpy as np
import pandas as pd
import psycopg
from data import (
    METRICS,
    TAGS,
    Dataset,
    cpu_days,
    host_tags,
    warehouse_frame,
    warehouse_points,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from warehouse import Warehouse

_BIND = re.compile(r"(?<!:):([A-Za-z_]\w*)")


def libpq_dsn(url: str) -> str:
    """A psycopg connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def tsbs_ddl(engine: str) -> list[str]:
    """TSBS's tables (tsbs/pkg/targets/timescaledb/creator.go) in each engine's types."""
    text_type = "VARCHAR" if engine == "duckdb" else "TEXT"
    metric_type = "DOUBLE" if engine == "duckdb" else "DOUBLE PRECISION"
    tag_columns = ", ".join(f"{t} {text_type}" for t in TAGS)
    metric_columns = ", ".join(f"{m} {metric_type}" for m in METRICS)
    return [
        f"CREATE TABLE tags (id INTEGER PRIMARY KEY, {tag_columns})",
        f"CREATE TABLE cpu (time TIMESTAMPTZ NOT NULL, tags_id INTEGER, {metric_columns})",
    ]


class WarehouseSystem:
    """The warehouse on either engine."""

    kind = "warehouse"

    def __init__(self, engine: str, url: str, write: str = "frame"):
        self.engine = engine
        self.url = url
        self.write = write
        self.wh = Warehouse(url)

    def load(self, data: Dataset) -> float:
        """Seconds the writes took, a day at a time: TSBS's rows as they come, a row per host
        and instant (``write_frame``), or first melted to a row per value
        (``write_points``, ``--write points``; the melting is not timed)."""
        tags = host_tags(data.hosts, data.seed)
        elapsed = 0.0
        for wide in cpu_days(data):
            if self.write == "frame":
                batch, write = warehouse_frame(wide, tags), self.wh.write_frame
                values = len(batch) * len(METRICS)
            else:
                batch, write = warehouse_points(wide, tags), self.wh.write_points
                values = len(batch)
            del wide
            start = time.perf_counter()
            result = write(batch, label_columns=list(TAGS))
            elapsed += time.perf_counter() - start
            assert result.written == values, result
        return elapsed

    def settle(self) -> None:
        if self.engine == "duckdb":
            with self.wh.engine.begin() as conn:
                conn.execute(text("CHECKPOINT"))
        else:
            with psycopg.connect(libpq_dsn(self.url), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")

    def compress(self, data: Dataset) -> tuple[float | None, float]:
        """Run the warehouse's own ``compress`` job as a user's schedule would: a compression
        policy, then the job at a time when every chunk of the data is past it (DuckDB sorts
        closed chunks by series; PostgreSQL encodes them into segments, but only chunks the
        rollups cover, so ``refresh_rollups`` runs first there, as it would on schedule).
        Seconds taken by the rollup refresh (None on DuckDB) and by the compress job."""
        from warehouse.jobs import compress

        compress.set_policy(self.wh, "1d")
        now = data.end + pd.Timedelta(days=1)
        rollups = None
        if self.engine == "postgresql":
            start = time.perf_counter()
            run = self.wh.run_job("refresh_rollups", now=now)
            assert run.status == "succeeded", run
            rollups = time.perf_counter() - start
        start = time.perf_counter()
        run = self.wh.run_job("compress", now=now)
        assert run.status == "succeeded", run
        return rollups, time.perf_counter() - start

    def explain(self, sql: str, params: dict) -> str:
        """EXPLAIN ANALYZE of a statement on the warehouse's own connection."""
        prefix = "EXPLAIN ANALYZE " if self.engine == "duckdb" else "EXPLAIN (ANALYZE, BUFFERS) "
        with self.wh.engine.connect() as conn:
            rows = conn.execute(text(prefix + sql), params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)

    def close(self) -> None:
        self.wh.close()


class DuckDBBaseline:
    """TSBS's wide table in a DuckDB file, loaded by inserting each day's DataFrame."""

    kind = "baseline"
    engine = "duckdb"

    def __init__(self, path: str):
        self.path = path
        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")  # date_trunc on TIMESTAMPTZ follows it

    def load(self, data: Dataset) -> float:
        for statement in tsbs_ddl("duckdb"):
            self.con.execute(statement)
        tags = host_tags(data.hosts, data.seed).rename(columns={"tags_id": "id"})
        self.con.register("tags_frame", tags)
        self.con.execute("INSERT INTO tags SELECT * FROM tags_frame")
        self.con.unregister("tags_frame")
        elapsed = 0.0
        for wide in cpu_days(data):
            start = time.perf_counter()
            self.con.register("cpu_frame", wide)
            self.con.execute("INSERT INTO cpu SELECT * FROM cpu_frame")
            self.con.unregister("cpu_frame")
            elapsed += time.perf_counter() - start
        return elapsed

    def settle(self) -> None:
        self.con.execute("CHECKPOINT")

    def query(self, sql: str, params: dict) -> pd.DataFrame:
        return self.con.execute(_BIND.sub(r"$\1", sql), params).df()

    def explain(self, sql: str, params: dict) -> str:
        rows = self.con.execute("EXPLAIN ANALYZE " + _BIND.sub(r"$\1", sql), params).fetchall()
        return "\n".join(str(r[-1]) for r in rows)

    def close(self) -> None:
        self.con.close()


class PostgresBaseline:
    """TSBS's wide table on PostgreSQL with TSBS's two indexes, loaded by binary COPY."""

    kind = "baseline"
    engine = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self.con = psycopg.connect(libpq_dsn(url), autocommit=True)
        self.con.execute("SET TimeZone = 'UTC'")

    def load(self, data: Dataset) -> float:
        for statement in tsbs_ddl("postgresql"):
            self.con.execute(statement)
        # TSBS's defaults: --partition-index (tags_id, time DESC) and --time-index (time DESC),
        # created before loading as its loader does.
        self.con.execute('CREATE INDEX cpu_tags_id_time_idx ON cpu (tags_id, "time" DESC)')
        self.con.execute('CREATE INDEX cpu_time_idx ON cpu ("time" DESC)')
        tags = host_tags(data.hosts, data.seed)
        with self.con.cursor().copy(f"COPY tags (id, {', '.join(TAGS)}) FROM STDIN") as copy:
            for row in tags.itertuples(index=False, name=None):
                copy.write_row(row)
        elapsed = 0.0
        for wide in cpu_days(data):
            start = time.perf_counter()
            payload = wide_copy_payload(wide)
            with self.con.transaction(), self.con.cursor().copy(
                    f"COPY cpu (time, tags_id, {', '.join(METRICS)}) FROM STDIN "
                    f"(FORMAT BINARY)") as copy:
                copy.write(payload)
            elapsed += time.perf_counter() - start
        return elapsed

    def settle(self) -> None:
        self.con.execute("VACUUM ANALYZE")

    def query(self, sql: str, params: dict) -> pd.DataFrame:
        cur = self.con.execute(_BIND.sub(r"%(\1)s", sql), params)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])

    def explain(self, sql: str, params: dict) -> str:
        cur = self.con.execute("EXPLAIN (ANALYZE, BUFFERS) " + _BIND.sub(r"%(\1)s", sql), params)
        return "\n".join(r[0] for r in cur.fetchall())

    def close(self) -> None:
        self.con.close()


_PG_EPOCH_US = 946_684_800_000_000  # binary COPY timestamps count µs from 2000-01-01


def wide_copy_payload(wide: pd.DataFrame) -> bytes:
    """A day of TSBS rows as a COPY BINARY stream: one numpy structured array, no Python
    work per row (https://www.postgresql.org/docs/15/sql-copy.html, binary format)."""
    fields = [("n", ">i2"), ("l_time", ">i4"), ("time", ">i8"), ("l_tags", ">i4"),
              ("tags", ">i4")]
    for m in METRICS:
        fields += [(f"l_{m}", ">i4"), (m, ">f8")]
    rows = np.empty(len(wide), dtype=np.dtype(fields))
    rows["n"], rows["l_time"], rows["l_tags"] = 2 + len(METRICS), 8, 4
    rows["time"] = wide["time"].to_numpy(dtype="datetime64[us]").view("i8") - _PG_EPOCH_US
    rows["tags"] = wide["tags_id"].to_numpy(dtype="i4")
    for m in METRICS:
        rows[f"l_{m}"] = 8
        rows[m] = wide[m].to_numpy(dtype="f8")
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    return header + rows.tobytes() + b"\xff\xff"
