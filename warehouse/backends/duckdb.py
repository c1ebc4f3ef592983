"""DuckDB, the embedded default.

One table per kind; "chunks" are fixed-width time ranges of that table (the hypertable's
interval, counted from the common bucket origin), pruned by DuckDB's zone maps on the time
column. Dropping a chunk deletes its range and checkpoints to give the space back (best effort:
another connection's older transaction defers it to the next checkpoint, jobs/reclaim.py).
One process may open the file read-write (https://duckdb.org/docs/connect/concurrency).
"""

from __future__ import annotations

import threading
import warnings
import weakref
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, text

from warehouse.backends import readonly_duckdb
from warehouse.backends.base import (
    BIND_PARAMETER,
    PERCENTILES,
    POINTS_ARROW_SCHEMA,
    Backend,
    Capabilities,
    count_commits,
    floor_to_bucket,
    raw_connection,
)
from warehouse.backends.duckdb_write import DuckDBWrites
from warehouse.backends.readonly import ReadOnlyLimits
from warehouse.errors import TerminalError
from warehouse.schema import HYPERTABLES, TS_MAX_US, TS_MIN_US
from warehouse.timeparse import epoch_us

# DuckDB's storage block size: https://duckdb.org/docs/internals/storage
_BLOCK_BYTES = 262_144
#: Set in a pooled connection's info by the read path's driver statements (autocommit, no
#: transaction left open); see _reset_returned.
_AUTOCOMMIT_ONLY = "autocommit_only"


class DuckDBBackend(DuckDBWrites, Backend):
    dialect = "duckdb"
    capabilities = Capabilities(
        native_partitions=False, binary_copy=False, advisory_locks=False, single_writer=True,
        parquet_scan=True,
    )

    @staticmethod
    def on_connect(dbapi_connection, _record) -> None:
        # Timestamps come back in UTC whatever the machine's time zone is.
        dbapi_connection.execute("SET TimeZone = 'UTC'")

    @classmethod
    def engine_options(cls) -> dict:
        # The pool's rollback of a returned connection is _reset_returned's to make.
        return {**super().engine_options(), "pool_reset_on_return": None}

    @classmethod
    def create_engine(cls, url: str):
        engine = super().create_engine(url)
        counter = _commit_counter(engine)
        from sqlalchemy import event

        event.listen(engine, "connect", lambda dbapi, _record: count_commits(dbapi, counter))
        event.listen(engine, "reset", _reset_returned)
        _COUNTED_ENGINES[engine] = counter
        # wh.sql keeps a connection of its own per pooled connection: closed with it, so a
        # closed Warehouse leaves nothing holding the file.
        for name in ("close", "invalidate"):
            event.listen(engine, name, lambda _dbapi, record, *_rest:
                         readonly_duckdb.close_own_connection(record.info))
        return engine

    def database_key(self) -> str:
        return _database_key(self.engine)

    def commit_generation(self) -> int | None:
        # The file has one writer process (single_writer): this one. Every commit made
        # through an engine this class created is counted, per file.
        counter = _COUNTED_ENGINES.get(self.engine)
        return None if counter is None else counter[0]

    @classmethod
    def is_transient(cls, exc: BaseException) -> bool:
        # Another process holds the file: "IO Error: Could not set lock on file ...".
        return super().is_transient(exc) or "Could not set lock" in str(exc)

    def epoch_us(self, expression: str) -> str:
        return f"epoch_us({expression})"

    def aggregate(self, agg: str) -> str:
        if agg in PERCENTILES:
            return f"quantile_cont(value, {PERCENTILES[agg]})"
        return {
            "mean": "avg(value)", "min": "min(value)", "max": "max(value)",
            "sum": "sum(value)", "count": "count(value)",
            "last": "arg_max(value, ts)", "first": "arg_min(value, ts)",
        }[agg]

    def filtered_aggregate(self, agg: str, condition: str) -> str:
        # Aggregates that skip NULLs read a CASE column: DuckDB evaluates ten FILTER clauses
        # of a pivot ~10% slower (bench/tsbs high-cpu-all, one thread). first/last rank by
        # ts, where a NULL value would still count: they keep FILTER.
        if agg in ("first", "last"):
            return super().filtered_aggregate(agg, condition)
        return self.aggregate(agg).replace("(value", f"(CASE WHEN {condition} THEN value END", 1)

    def fetch_frame(self, conn: Connection, sql: str, params: dict) -> pd.DataFrame:
        # DuckDB hands results over as columns (Arrow/NumPy); no Python object per value.
        return conn.execute(text(sql), params).cursor.df()

    def fetch_columns(self, conn: Connection, sql: str, params: dict) -> dict[str, np.ndarray]:
        # NumPy straight from DuckDB's vectors: for a small answer ~0.5 ms less than .df()
        # (bench/query_overhead.py). Columns holding NULLs come back masked.
        if conn.in_transaction():  # earlier statements of this query: the same snapshot
            columns = conn.execute(text(sql), params).cursor.fetchnumpy()
        else:
            # The query's first statement: on its own it is a transaction of its own
            # (DuckDB autocommit), one snapshot, with no BEGIN, no ROLLBACK at close and no
            # SQLAlchemy execute (together ~20% of a small wh.points, py-spy). A statement
            # after it begins a transaction as usual.
            driver_sql, names = _driver_statement(sql)
            columns = raw_connection(conn).execute(
                driver_sql, {n: _plain(params[n]) for n in names}).fetchnumpy()
            conn.info[_AUTOCOMMIT_ONLY] = True
        return {name: _unmasked(column) for name, column in columns.items()}

    # -- jobs -----------------------------------------------------------------------------
    def run_script(self, conn: Connection, sql: str, params: dict) -> list[tuple]:
        # DuckDB has no stored procedures: a job file may be a script of several statements.
        # Binds cannot reach into a script, so parameters become session variables that the
        # script reads with getvariable() (constant-folded: filters on them prune row groups).
        raw = raw_connection(conn)
        for name, value in params.items():
            if not name.isidentifier():
                raise ValueError(f"bad script parameter name {name!r}")
            raw.execute(f'SET VARIABLE "{name}" = ?', [_plain(value)])
        return [tuple(row) for row in raw.execute(sql).fetchall()]

    def fetch_points(self, conn: Connection, sql: str, params: dict) -> pa.Table:
        wrapped = (f"SELECT ts, series_id, value, CAST(run_id AS VARCHAR) AS run_id "
                   f"FROM ({sql}) AS q")
        with warnings.catch_warnings():
            # duckdb_engine warns that Arrow through its cursor copies once; fine here.
            warnings.simplefilter("ignore", UserWarning)
            table = conn.execute(text(wrapped), params).cursor.to_arrow_table()
        return table.cast(POINTS_ARROW_SCHEMA)

    def interrupt(self, conn: Connection) -> None:
        raw_connection(conn).interrupt()

    # -- chunks ---------------------------------------------------------------------------
    def show_chunks(self, conn: Connection, table: str) -> pd.DataFrame:
        interval = self.chunk_interval_us(conn, table)
        column = HYPERTABLES[table]
        frame = conn.execute(text(
            f"SELECT {self.bucket_start(column, interval)} AS start_us, count(*) AS rows "
            f"FROM {table} GROUP BY 1 ORDER BY 1"
        )).fetchall()
        return _chunk_frame(table, [(int(s), int(s) + interval, int(n)) for s, n in frame])

    def drop_chunks(self, conn: Connection, table: str, older_than: datetime) -> list[str]:
        interval = self.chunk_interval_us(conn, table)
        chunks = self.show_chunks(conn, table)
        cutoff = pd.Timestamp(older_than)
        doomed = chunks[chunks["range_end"] <= cutoff]
        if doomed.empty:
            return []
        column = HYPERTABLES[table]
        # Whole chunks only: everything before the end of the newest doomed chunk.
        end = pd.Timestamp(int(floor_to_bucket(epoch_us(cutoff), interval)), unit="us", tz="UTC")
        conn.execute(text(f"DELETE FROM {table} WHERE {column} < :end"), {"end": end})
        if table == "points":
            self.forget_readings(conn, None, end - pd.Timedelta(microseconds=1))
        return doomed["chunk_name"].tolist()

    def maintain(self, conn: Connection, now: datetime) -> dict[str, int]:
        return {"chunks_created": 0, "rows_moved": 0}

    def reclaim_space(self, conn: Connection) -> None:
        """CHECKPOINT so deleted ranges are given back to the file's free list."""
        conn.execute(text("CHECKPOINT"))

    @classmethod
    def reclaim_refused(cls, exc: BaseException) -> str | None:
        # A plain CHECKPOINT refuses while another connection holds a transaction older than
        # a committed UPDATE or ALTER TABLE (a frame being read while a job ran). Only that
        # refusal: "the current transaction has transaction local changes" is our own bug.
        refusal = getattr(exc, "orig", exc)
        if (isinstance(refusal, duckdb.TransactionException)
                and "Cannot CHECKPOINT: there are other write transactions active"
                in str(refusal)):
            return "DuckDB refused CHECKPOINT: another connection holds an older transaction"
        return None

    def table_sizes(self, conn: Connection) -> pd.DataFrame:
        # Rows still in the write-ahead log have no blocks yet: checkpoint to count them.
        # Refused (an older transaction is open), the sizes leave those rows out rather than
        # `warehouse info` failing; the refusal aborted the transaction, so begin anew.
        try:
            conn.execute(text("CHECKPOINT"))
        except Exception as exc:
            if self.reclaim_refused(exc) is None:
                raise
            conn.rollback()
        rows = []
        # readings: the pivoted copy of compressed chunks (migration 0016), bytes on top of
        # points that `warehouse info` should show.
        copy = ("readings",) if self.table_exists(conn, "readings") else ()
        for table in ("recipes", "series", "points", "runs", "step_runs", *copy):
            count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            blocks = conn.execute(text(
                "SELECT count(DISTINCT block_id) FROM pragma_storage_info(:t) "
                "WHERE block_id >= 0"
            ), {"t": table}).scalar_one()
            rows.append((table, int(count), int(blocks) * _BLOCK_BYTES))
        return pd.DataFrame(rows, columns=["table", "rows", "bytes"])

    def read_only_query(self, conn: Connection, sql: str, params: dict, *,
                        limits: ReadOnlyLimits | None = None) -> pd.DataFrame:
        """One analyst statement, checked by DuckDB's parser and run in a read-only
        transaction on a connection of its own (warehouse/backends/readonly_duckdb.py).
        Raises ReadOnlyError (QueryTimeoutError, ResultTooLargeError) on refusal."""
        try:
            return readonly_duckdb.read_only_query(
                self, conn, sql, params, limits or ReadOnlyLimits.from_env())
        finally:
            # Its statements ran on a connection of its own: nothing is open on the pooled
            # one for the pool to roll back (the failed rollback cost ~0.3 ms a wh.sql).
            conn.info[_AUTOCOMMIT_ONLY] = True

    def grant_analyst(self, conn: Connection, role_name: str, timeout_s: float = 60.0) -> None:
        """DuckDB has no database roles: analysts use ``warehouse sql`` / ``wh.sql`` (read-only
        by construction) or open a copy of the file."""
        raise TerminalError(
            f"cannot grant {role_name!r}: DuckDB has no database roles; analysts use "
            f"`warehouse sql` (read-only) or the server's API")


#: Commit counters per database file, and the engines whose commits feed them. Keyed by
#: the resolved file, so two engines on one file (two Warehouse objects) share a counter.
_COMMIT_COUNTERS: dict[str, list[int]] = {}
_COUNTED_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COUNTERS_GUARD = threading.Lock()


def _database_key(engine) -> str:
    """The file, whatever URL spelled it (``./w.duckdb`` and ``w.duckdb`` open one DuckDB
    instance in a process); an in-memory database is private to its engine."""
    name = engine.url.database
    return (str(Path(name).resolve()) if name and name != ":memory:"
            else f"memory:{id(engine)}")


def _commit_counter(engine) -> list[int]:
    with _COUNTERS_GUARD:
        return _COMMIT_COUNTERS.setdefault(_database_key(engine), [0])


def _reset_returned(dbapi_connection, record, reset_state) -> None:
    """Roll back a connection returning to the pool, unless nothing can be open: SQLAlchemy
    rolled its own transaction back already, or the read path ran its statements on the
    driver in autocommit (fetch_columns). Asked to roll back with no transaction, DuckDB
    raises, and the exception was most of what closing a small query's connection cost."""
    autocommit_only = record.info.pop(_AUTOCOMMIT_ONLY, False)
    if reset_state.transaction_was_reset or autocommit_only:
        return
    try:
        dbapi_connection.rollback()
    except duckdb.TransactionException as exc:
        if "no transaction is active" not in str(exc):
            raise


@lru_cache(maxsize=512)
def _driver_statement(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` binds as DuckDB's ``$name``, and the names bound (the
    same text comes back with every repeated query)."""
    return (BIND_PARAMETER.sub(r"$\1", sql),
            tuple(dict.fromkeys(BIND_PARAMETER.findall(sql))))


def _unmasked(column: np.ndarray) -> np.ndarray:
    """A fetchnumpy column with NULLs as NaN (floats) or None (anything else)."""
    if not isinstance(column, np.ma.MaskedArray):
        return column
    if column.dtype.kind == "f":
        return column.filled(np.nan)
    values = column.data.astype(object)
    values[np.ma.getmaskarray(column)] = None
    return values


def _plain(value):
    """A parameter DuckDB binds as-is: pandas Timestamps as datetimes."""
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _chunk_frame(table: str, ranges: list[tuple[int, int, int | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(ranges, columns=["start_us", "end_us", "rows"])
    # µs precision holds years 1-9999 (nanoseconds stop at 1677-2262); the chunk holding
    # 9999-12-31 would end in year 10000, which no Python datetime holds: clamp the edges.
    for bound, column in (("range_start", "start_us"), ("range_end", "end_us")):
        us = frame[column].to_numpy(dtype="i8").clip(TS_MIN_US, TS_MAX_US)
        frame[bound] = pd.Series(us.astype("datetime64[us]"), index=frame.index).dt.tz_localize(
            "UTC")
    frame["chunk_name"] = [
        f"{table}_{t:%Y%m%d_%H%M%S}" for t in frame["range_start"]
    ]
    return frame[["chunk_name", "range_start", "range_end", "rows"]]
