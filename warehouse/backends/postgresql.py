"""PostgreSQL (15+) through psycopg 3.

``points``, ``runs`` and ``step_runs`` are natively range-partitioned on time. Chunks are
made by the SQL function ``wh_ensure_chunk`` (sql/postgresql/migrations/0001_core.up.sql)
ahead of time by :meth:`maintain` and on demand before each write; a DEFAULT partition
catches rows other clients insert outside every chunk. Points arrive through binary COPY.

A TimescaleDB backend will subclass this one and override the chunk methods with
``create_hypertable``/``show_chunks``/``drop_chunks``.
"""

from __future__ import annotations

import select
import threading
import time
import weakref
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, DisconnectionError

from warehouse.backends import readonly_postgresql
from warehouse.backends.base import (
    BIND_PARAMETER,
    PERCENTILES,
    Backend,
    Capabilities,
    SnapshotEnded,
    count_commits,
    raw_connection,
)
from warehouse.backends.postgresql_write import PostgreSQLWrites, points_from_copy
from warehouse.backends.readonly import ReadOnlyLimits
from warehouse.schema import HYPERTABLES, TS_MAX_US, TS_MIN_US

_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_CHECKED_IN = "checked_in_at"  # time.monotonic() in a pooled connection's info
_PING_AFTER_IDLE_S = 1.0
#: In a pooled connection's info: the statement deferred to go with the next one
#: (Backend.defer_statement), then its rows once sent; and whether that message ended the
#: call's transaction (no statement may follow in the call: SnapshotEnded).
_DEFERRED = "deferred_statement"
_DEFERRED_ROWS = "deferred_rows"
_SNAPSHOT_ENDED = "snapshot_ended"
#: Commits this process made, per database URL, and the engines counting into each.
_LOCAL_COMMITS: dict[str, list[int]] = {}
_COUNTED_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COUNTERS_GUARD = threading.Lock()


def _clamped_ts(us: int) -> pd.Timestamp:
    """A chunk bound (µs) as a UTC timestamp inside the range the warehouse stores."""
    return pd.Timestamp(min(max(int(us), TS_MIN_US), TS_MAX_US), unit="us", tz="UTC")


def _has_input(dbapi_connection) -> bool:
    """Whether the server sent something to an idle connection (no round trip: a select on
    its socket). A server that ended the session (restart, pg_terminate_backend) has: its
    FATAL message or the closed socket is waiting there, so the connection gets pinged."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):  # closed already: let the ping find out
        return True
    return bool(readable)


def _driver_rows(conn: Connection, sql: str, params: dict, *, binary: bool = False
                 ) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a query run on psycopg directly, in the transaction of
    ``conn``'s driver connection (psycopg begins one with the isolation level
    :meth:`PostgreSQLBackend.read_snapshot` set, and the connection's return to the pool
    rolls it back). SQLAlchemy's text() compile, bind processing and result rows cost more
    CPU than a small answer's decoding: ~0.3 ms per statement (py-spy, 2 per wh.points).
    Errors come out as SQLAlchemy's, a connection the server dropped invalidated, as
    ``conn.execute`` does. ``binary``: the results in the binary format."""
    _refuse_after_snapshot(conn)
    statement, binds = _driver_statement(sql)
    raw = raw_connection(conn)
    deferred = conn.info.pop(_DEFERRED, None)
    values = {n: params[n] for n in binds} if binds else None
    try:
        if deferred is not None:
            return _with_deferred(conn, raw, deferred, statement, values, binary)
        with raw.cursor(binary=binary) as cursor:
            cursor.execute(statement, values)
            return [column.name for column in cursor.description], cursor.fetchall()
    except psycopg.Error as exc:
        lost = raw.closed or raw.broken
        if lost:
            conn.invalidate()
        raise DBAPIError.instance(statement, params, exc, psycopg.Error,
                                  connection_invalidated=lost) from exc


def _with_deferred(conn: Connection, raw, deferred: str, statement: str, values: dict | None,
                   binary: bool = False) -> tuple[list[str], list[tuple]]:
    """``statement`` sent after the deferred statement in ONE round trip: a libpq pipeline
    of extended-protocol messages, so both take psycopg's prepared statements (a text run
    five times is parsed and planned once per connection). Parsing and planning were half
    the server's time for TSBS single-groupby-1-1-1 after compression (a tier plan's two raw
    edges over hot, regular and irregular points); its call went 2.54 -> 1.75 ms median,
    same process, load 1.0. Bound values are custom-planned (partitions pruned at plan
    time) until PostgreSQL finds its generic plan no dearer; that one prunes at start.

    With no transaction open, the pipeline is a transaction of its own: BEGIN ISOLATION
    LEVEL REPEATABLE READ (one snapshot for both) and COMMIT go in it, so neither psycopg's
    BEGIN nor the ROLLBACK of the connection's return is a round trip (the driver is in
    autocommit meanwhile). A statement after it in the same call would read another
    snapshot: it raises :class:`SnapshotEnded` and the call is answered again
    (catalog.state_checked)."""
    idle = raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    switched = idle and not raw.autocommit
    if switched:
        raw.autocommit = True
    try:
        with raw.pipeline():
            if idle:
                raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            state = raw.execute(deferred)
            cursor = raw.cursor(binary=binary)
            cursor.execute(statement, values)
            if idle:
                raw.execute("COMMIT")
        conn.info[_DEFERRED_ROWS] = state.fetchall()
        answer = [column.name for column in cursor.description], cursor.fetchall()
    except BaseException:
        # A failed step leaves the transaction BEGIN opened aborted, its COMMIT skipped. A
        # connection too broken to roll back is the pool's to replace; the error stays this.
        if idle and not raw.closed and not raw.broken:
            try:
                raw.rollback()
            except psycopg.Error:
                pass
        raise
    finally:
        if switched and not raw.closed and (raw.info.transaction_status
                                            == psycopg.pq.TransactionStatus.IDLE):
            raw.autocommit = False
    if idle:
        conn.info[_SNAPSHOT_ENDED] = True
    return answer


def _refuse_after_snapshot(conn) -> None:
    """Raise :class:`SnapshotEnded` if the call's one-message transaction is over."""
    if conn.info.get(_SNAPSHOT_ENDED):
        raise SnapshotEnded("a statement after the one that ended this call's snapshot")


@lru_cache(maxsize=512)
def _driver_statement(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` binds as psycopg's ``%(name)s`` (a literal ``%`` doubled,
    as psycopg wants when there are parameters), and the names bound."""
    names = tuple(dict.fromkeys(BIND_PARAMETER.findall(sql)))
    if not names:
        return sql, names
    return BIND_PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%")), names


class PostgreSQLBackend(PostgreSQLWrites, Backend):
    dialect = "postgresql"
    capabilities = Capabilities(
        native_partitions=True, binary_copy=True, advisory_locks=True, single_writer=False,
        change_notify=True,
    )

    @classmethod
    def engine_options(cls) -> dict:
        # The connection returned last is handed out next: a caller asking one query after
        # another keeps one server process, whose caches and prepared statements are warm
        # (_with_deferred), instead of going round the pool that jobs filled (FIFO). TSBS
        # single-groupby-1-1-1 with two pooled connections, compressed: first 100 calls
        # 2.8-6.3 -> 1.4-3.0 ms median, load 3.1-3.5.
        return {**super().engine_options(), "pool_use_lifo": True}

    @classmethod
    def create_engine(cls, url: str):
        engine = super().create_engine(url)
        from sqlalchemy import event

        # A restarted server must not fail the next call: a connection that sat in the pool
        # is pinged before it is handed out (a dead one is replaced). One used within the
        # last second is not: pinging every checkout (pool_pre_ping) cost a round trip per
        # query, ~15% of a small wh.points (py-spy); a restart takes longer than that.
        def checkin(dbapi, record):
            record.info[_CHECKED_IN] = time.monotonic()
            for key in (_DEFERRED, _DEFERRED_ROWS, _SNAPSHOT_ENDED):
                record.info.pop(key, None)

        def checkout(dbapi, record, _proxy):
            idle_since = record.info.get(_CHECKED_IN)
            if (idle_since is not None and time.monotonic() - idle_since < _PING_AFTER_IDLE_S
                    and not _has_input(dbapi)):
                return
            try:
                alive = engine.dialect.do_ping(dbapi)
            except Exception:  # noqa: BLE001 - any failure means: replace it
                alive = False
            if not alive:
                raise DisconnectionError("connection lost while idle in the pool")

        event.listen(engine, "checkin", checkin)
        event.listen(engine, "checkout", checkout)
        event.listen(engine, "before_cursor_execute",
                     lambda conn, *_statement: _refuse_after_snapshot(conn))
        # This process's commits, per database (two Warehouse objects on one share it).
        key = engine.url.render_as_string(hide_password=False)
        with _COUNTERS_GUARD:
            counter = _LOCAL_COMMITS.setdefault(key, [0])
        _COUNTED_ENGINES[engine] = counter
        event.listen(engine, "connect", lambda dbapi, _record: count_commits(dbapi, counter))
        return engine

    def local_commits(self) -> int:
        counter = _COUNTED_ENGINES.get(self.engine)
        return 0 if counter is None else counter[0]

    @staticmethod
    def on_connect(dbapi_connection, _record) -> None:
        # Timestamps come back in UTC whatever the server's TimeZone setting is.
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        # No JIT: compiling a statement's expressions cost more than it saved on every
        # warehouse read measured (TSBS double-groupby-1 155 -> 94 ms; a 554 ms statement
        # spent 476 ms in JIT; docs/tsbs.md, session 4). The server's default stays for
        # every other client.
        dbapi_connection.execute("SET jit = off")
        dbapi_connection.commit()

    def __init__(self, engine):
        super().__init__(engine)
        self._chunk_cache: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}

    def epoch_us(self, expression: str) -> str:
        return f"wh_epoch_us({expression})"

    def bucket_key(self, column: str, every_us: int) -> str:
        # date_bin is integer arithmetic in C (floor from the origin, exact before it too);
        # wh_epoch_us is numeric: computed on every row it cost ~10x the whole query.
        # https://www.postgresql.org/docs/15/functions-datetime.html#FUNCTIONS-DATETIME-BIN
        return (f"date_bin('{int(every_us)} microseconds', {column}, "
                f"TIMESTAMPTZ '2000-01-03 00:00:00+00')")

    def bucket_start(self, column: str, every_us: int) -> str:
        return f"wh_epoch_us({self.bucket_key(column, every_us)})"

    def aggregate(self, agg: str) -> str:
        if agg in PERCENTILES:
            return f"percentile_cont({PERCENTILES[agg]}) WITHIN GROUP (ORDER BY value)"
        return {
            "mean": "avg(value)", "min": "min(value)", "max": "max(value)",
            "sum": "sum(value)", "count": "count(value)",
            "last": "(array_agg(value ORDER BY ts DESC))[1]",
            "first": "(array_agg(value ORDER BY ts))[1]",
        }[agg]

    def filtered_aggregate(self, agg: str, condition: str) -> str:
        # FILTER goes inside the subscript of the array_agg forms of first/last.
        if agg in ("first", "last"):
            order = "ts DESC" if agg == "last" else "ts"
            return f"(array_agg(value ORDER BY {order}) FILTER (WHERE {condition}))[1]"
        return super().filtered_aggregate(agg, condition)

    def fetch_columns(self, conn: Connection, sql: str, params: dict) -> dict[str, np.ndarray]:
        names, rows = _driver_rows(conn, sql, params)
        if not rows:
            return {name: np.empty(0, dtype=object) for name in names}
        return {name: np.array(column, dtype=object) for name, column in zip(names, zip(*rows))}

    def fetch_rows(self, conn: Connection, sql: str, params: dict) -> list[tuple]:
        return _driver_rows(conn, sql, params)[1]

    def fetch_number_columns(self, conn: Connection, sql: str, params: dict,
                             names: list[str]) -> dict[str, np.ndarray]:
        # One row of arrays (array_agg: one pass over the rows, so the i-th elements are of
        # one row) in the binary format: the driver makes no tuple per row and reads each
        # number without parsing text. A frame's 3,605 partials (TSBS single-groupby-5-1-12
        # from the minute tier) cost the client 3.3 ms of CPU as rows, 0.7-1.0 as arrays.
        arrays = ", ".join(f"array_agg({name}) AS {name}" for name in names)
        _, rows = _driver_rows(conn, f"SELECT {arrays} FROM ({sql}) AS numbers", params,
                               binary=True)
        return {name: np.array([] if column is None else column)  # no row: NULL arrays
                for name, column in zip(names, rows[0])}

    def defer_statement(self, conn: Connection, sql: str) -> bool:
        # A round trip to the server costs ~0.1-0.3 ms idle and several ms on a busy
        # machine: the state statement goes with the query's own (docs/query.md).
        conn.info.pop(_DEFERRED_ROWS, None)
        conn.info[_DEFERRED] = sql
        return True

    def deferred_rows(self, conn: Connection) -> list[tuple]:
        rows = conn.info.pop(_DEFERRED_ROWS, None)
        if rows is not None:
            return rows
        return _driver_rows(conn, conn.info.pop(_DEFERRED), {})[1]

    def new_snapshot(self, conn: Connection) -> None:
        # A state statement deferred by a run that then stopped (SnapshotEnded before its
        # next statement went) must not ride along with the next statement: that one would
        # end its snapshot at once (the frame's retry raised SnapshotEnded reading the list
        # of copies after drop_chunks), and conn.info outlives the call on a pooled
        # connection.
        for key in (_SNAPSHOT_ENDED, _DEFERRED, _DEFERRED_ROWS):
            conn.info.pop(key, None)

    # -- jobs -----------------------------------------------------------------------------
    def fetch_points(self, conn: Connection, sql: str, params: dict) -> pa.Table:
        # Binary COPY out, decoded with numpy: a fixed 54-byte row once run_id is never NULL
        # (the nil UUID stands for none), so no Python object is made per row. COPY takes no
        # server-side parameters; psycopg binds them client-side (psycopg docs, "COPY").
        _refuse_after_snapshot(conn)
        query = str(text(sql).compile(dialect=conn.dialect))
        statement = (f"COPY (SELECT ts, series_id, value, "
                     f"coalesce(run_id, '{_NIL_UUID}'::uuid) FROM ({query}) AS q) "
                     f"TO STDOUT (FORMAT BINARY)")
        with raw_connection(conn).cursor().copy(statement, params) as copy:
            payload = b"".join(bytes(block) for block in copy)
        return points_from_copy(payload)

    def read_snapshot(self, conn: Connection) -> None:
        # READ COMMITTED gives each statement its own snapshot; a query that reads rollups,
        # watermarks and raw points in several statements must see one state.
        # As a connection characteristic psycopg puts it in the BEGIN it sends anyway
        # ("BEGIN ISOLATION LEVEL REPEATABLE READ"): no round trip of its own, where SET
        # TRANSACTION cost one (~15% of a small wh.points, py-spy). Reset when the
        # connection returns to the pool.
        # A transaction the driver has open already (a call answered again in its snapshot,
        # catalog.state_checked) reads one snapshot: begun here, with this level.
        if not conn.in_transaction() and (raw_connection(conn).info.transaction_status
                                          == psycopg.pq.TransactionStatus.IDLE):
            conn.execution_options(isolation_level="REPEATABLE READ")

    def interrupt(self, conn: Connection) -> None:
        raw_connection(conn).cancel_safe()

    # -- change notification ---------------------------------------------------------------
    def notify_change(self, conn: Connection, payload: str) -> None:
        # NOTIFY is transactional: delivered at commit, dropped on rollback.
        # https://www.postgresql.org/docs/15/sql-notify.html
        conn.execute(text(self.sql("changes/notify")), {"payload": payload})

    def listen_changes(self, on_payload, stop, on_listen=None) -> None:
        # A connection of its own, outside the pool: it sits in LISTEN for the process's life.
        # Reconnects after a lost connection (changes sent meanwhile are missed: a listener
        # that needs every change re-reads the tables after a gap).
        delay = 0.5
        while not stop.is_set():
            try:
                raw = self.engine.raw_connection()
                conn = raw.driver_connection
                raw.detach()  # the pool forgets it: closed here, never handed out again
                try:
                    conn.rollback()  # pre-ping may have opened a transaction
                    conn.autocommit = True
                    conn.execute(self.sql("changes/listen"))
                    delay = 0.5
                    if on_listen is not None:
                        on_listen()
                    while not stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            on_payload(notice.payload)
                finally:
                    conn.close()
            except Exception:  # noqa: BLE001 - unreachable server: wait and listen again
                if stop.wait(delay):
                    return
                delay = min(delay * 2, 10.0)

    # -- chunks ---------------------------------------------------------------------------
    def show_chunks(self, conn: Connection, table: str) -> pd.DataFrame:
        self.chunk_interval_us(conn, table)  # raises for an unknown table
        # Bounds as µs: a chunk holding 9999-12-31 ends in year 10000, which no Python
        # datetime holds; shown clamped to the range the warehouse stores.
        rows = conn.execute(text(
            "SELECT chunk_name, wh_epoch_us(range_start), wh_epoch_us(range_end) "
            "FROM wh_show_chunks(:t)"), {"t": table}).fetchall()
        counts = [
            conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name, _, _ in rows
        ]
        return pd.DataFrame(
            [(n, _clamped_ts(s), _clamped_ts(e), int(c)) for (n, s, e), c in zip(rows, counts)],
            columns=["chunk_name", "range_start", "range_end", "rows"],
        )

    def drop_chunks(self, conn: Connection, table: str, older_than: datetime) -> list[str]:
        self.chunk_interval_us(conn, table)
        names = conn.execute(text("SELECT * FROM wh_drop_chunks(:t, :o)"),
                             {"t": table, "o": older_than}).scalars().all()
        self._chunk_cache.pop(table, None)
        return list(names)

    def maintain(self, conn: Connection, now: datetime) -> dict[str, int]:
        created = moved = 0
        for table in HYPERTABLES:
            before = len(self._known_chunks(conn, table, refresh=True)[0])
            interval = timedelta(microseconds=self.chunk_interval_us(conn, table))
            for ahead in (now, now + interval, now + 2 * interval):
                conn.execute(text("SELECT wh_ensure_chunk(:t, :ts)"), {"t": table, "ts": ahead})
            moved += conn.execute(text("SELECT wh_move_default_rows(:t)"), {"t": table}).scalar_one()
            created += len(self._known_chunks(conn, table, refresh=True)[0]) - before
        return {"chunks_created": created, "rows_moved": int(moved)}

    def refresh_statistics(self, engine: Engine) -> list[str]:
        """ANALYZE each hypertable whose parent statistics are missing or stale
        (sql/postgresql/jobs/stale_statistics.sql): without them a year of runs or steps
        was planned as if tiny (a dashboard panel took 16 s; 0.5 s after ANALYZE)."""
        analysed = []
        # Outside a transaction block ANALYZE takes each partition in its own transaction:
        # one transaction over thousands of chunks would run out of lock slots.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in HYPERTABLES:
                if conn.execute(text(self.sql("jobs/stale_statistics")), {"t": table}).scalar():
                    conn.exec_driver_sql(f"ANALYZE {table}")  # a name from our own list
                    analysed.append(table)
        return analysed

    def table_sizes(self, conn: Connection) -> pd.DataFrame:
        rows = []
        for table in ("recipes", "series", "points", "runs", "step_runs"):
            count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            size = conn.execute(text(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                "FROM pg_partition_tree(CAST(:t AS regclass))"), {"t": table}).scalar_one()
            rows.append((table, int(count), int(size)))
        return pd.DataFrame(rows, columns=["table", "rows", "bytes"])

    def read_only_query(self, conn: Connection, sql: str, params: dict, *,
                        limits: ReadOnlyLimits | None = None) -> pd.DataFrame:
        """One analyst statement, checked by the server's parser and run read-only as this
        database's reader role (warehouse/backends/readonly_postgresql.py). Raises
        ReadOnlyError (QueryTimeoutError, ResultTooLargeError) on refusal."""
        return readonly_postgresql.read_only_query(
            self, conn, sql, params, limits or ReadOnlyLimits.from_env())

    def grant_analyst(self, conn: Connection, role_name: str, timeout_s: float = 60.0) -> None:
        """`warehouse grant analyst ROLE`: SELECT on the documented views and tables only,
        read-only sessions and a statement timeout by default (the role is made NOLOGIN if
        it does not exist). Runs in ``conn``'s transaction."""
        readonly_postgresql.grant_analyst(self, conn, role_name, timeout_s)
