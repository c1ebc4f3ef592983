"""The backend seam: what generic code may ask of a storage engine.

Generic code (ingest, query, jobs) asks ``backend.capabilities`` and calls these methods; it
never branches on a dialect name. A new engine subclasses :class:`Backend` (or an existing
backend: TimescaleDB will subclass PostgreSQL) and registers itself by its ``dialect``.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from warehouse.errors import TerminalError, TransientError, UnknownNameError, WarehouseError
from warehouse.sqlfiles import load_sql

_WRITE_FENCES: dict[str, threading.RLock] = {}
_WRITE_FENCES_GUARD = threading.Lock()

# Chunks and time buckets are counted from a Monday, as TimescaleDB's time_bucket does, so
# weekly buckets start on Mondays. The same origin is used by the SQL on every engine.
BUCKET_ORIGIN_US = 946_857_600_000_000  # 2000-01-03 00:00:00 UTC in µs since the Unix epoch
#: A ``:name`` bind as SQLAlchemy's text() reads it (not ``::`` casts, not ``12:30``), for
#: engines that send their hot statements to the driver themselves.
BIND_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; generic code branches on these, never on the engine's name."""

    native_partitions: bool  # time chunks are real tables (else: ranges of one table)
    binary_copy: bool  # bulk load through COPY ... (FORMAT BINARY)
    advisory_locks: bool  # cross-process locks inside the database
    single_writer: bool  # only one process may open the database read-write
    parquet_scan: bool = False  # SQL can read Parquet files (read_parquet)
    change_notify: bool = False  # other processes can be told of committed writes (NOTIFY)



def raw_connection(conn: Connection):
    """The driver's connection under SQLAlchemy's (DuckDB's for register() and Arrow
    transfers, psycopg's for COPY and statements without SQLAlchemy's per-call work)."""
    return conn.connection.driver_connection


class SnapshotEnded(Exception):
    """A statement was asked for on a connection whose call's transaction ended with the
    message that carried a deferred statement (:meth:`Backend.defer_statement`): it would
    read another snapshot, so the call must be answered again from the start."""


def count_commits(dbapi_connection, counter: list[int]) -> None:
    """Make the driver connection count its commits in ``counter``, AFTER each one: a reader
    that read the count before its transaction began, and still sees it unchanged, saw every
    commit made through such connections."""
    commit = dbapi_connection.commit

    def counted_commit():
        try:
            return commit()
        finally:
            counter[0] += 1

    dbapi_connection.commit = counted_commit


class Backend(ABC):
    """One storage engine. Instances are cheap; they hold the SQLAlchemy engine."""

    dialect: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: Folders of ``sql/`` searched in order for a named SQL file; a variant engine
    #: (TimescaleDB over PostgreSQL) puts its own folder in front of its parent's.
    sql_folders: ClassVar[tuple[str, ...]]
    _registry: ClassVar[dict[str, type[Backend]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "dialect" in cls.__dict__:
            Backend._registry[cls.dialect] = cls
            if "sql_folders" not in cls.__dict__:
                cls.sql_folders = (cls.dialect, "common")

    # -- connecting -----------------------------------------------------------------------
    @classmethod
    def create_engine(cls, url: str) -> Engine:
        """A SQLAlchemy engine for ``url`` with this backend's connect hooks installed."""
        engine = create_engine(url, **cls.engine_options())
        from sqlalchemy import event

        event.listen(engine, "connect", cls.on_connect)
        return engine

    @classmethod
    def engine_options(cls) -> dict:
        """Keyword arguments for :func:`sqlalchemy.create_engine`."""
        return {}

    @staticmethod
    def on_connect(dbapi_connection, _record) -> None:
        """Run on every new driver connection (session settings such as the time zone)."""
        return None

    @property
    def write_fence(self) -> threading.RLock:
        """The lock every write to this database from this process holds. Jobs that change
        points or rollups hold it too on a single-writer engine (DuckDB), where it is the
        only fence between ingest and a job: no other process, and no row locks to take.
        Keyed by database URL, so two Warehouse objects on one file share it."""
        key = self.database_key()
        with _WRITE_FENCES_GUARD:
            return _WRITE_FENCES.setdefault(key, threading.RLock())

    def database_key(self) -> str:
        """What names this database within the process (the full URL; DuckDB: the file)."""
        return self.engine.url.render_as_string(hide_password=False)

    def job_fence(self) -> AbstractContextManager:
        """What a job or an admin action that changes points, rollups or the schema holds:
        the write fence on a single-writer engine, where nothing else keeps ingest out;
        nothing elsewhere (row and table locks do)."""
        return self.write_fence if self.capabilities.single_writer else nullcontext()

    @classmethod
    def is_transient(cls, exc: BaseException) -> bool:
        """True for "database unreachable, restarting or locked" (worth retrying later), as
        opposed to a bug or bad input that retrying will not fix."""
        return isinstance(exc, (OperationalError, TransientError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated)

    @classmethod
    def classify(cls, exc: BaseException) -> WarehouseError:
        """The warehouse's own error for a driver error: transient (retry) or terminal."""
        if isinstance(exc, WarehouseError):
            return exc
        kind = TransientError if cls.is_transient(exc) else TerminalError
        return kind(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])

    def __init__(self, engine: Engine):
        self.engine = engine
        # Facts about the schema that only a migration changes (Warehouse.migrate and
        # downgrade clear them), so per-query code need not ask the database every time.
        self.schema_facts: dict[str, object] = {}

    # -- SQL text -------------------------------------------------------------------------
    def sql(self, name: str) -> str:
        """The SQL file ``name`` for this engine (``sql/<dialect>/<name>.sql``)."""
        return load_sql(self.sql_folders, name)

    @abstractmethod
    def epoch_us(self, expression: str) -> str:
        """SQL for µs since the Unix epoch of a timestamptz expression, exact."""

    def bucket_start(self, column: str, every_us: int) -> str:
        """SQL for the µs start of the bucket of ``column``: a floor division from the origin
        that is exact for times before it too (``%`` truncates towards zero on both engines,
        so the remainder is made non-negative first)."""
        every_us = int(every_us)
        x = f"({self.epoch_us(column)} - {BUCKET_ORIGIN_US})"
        return f"({BUCKET_ORIGIN_US} + {x} - ((({x} % {every_us}) + {every_us}) % {every_us}))"

    def bucket_key(self, column: str, every_us: int) -> str:
        """SQL to GROUP BY for the bucket of ``column``; :meth:`bucket_start` is a function of
        it, so an engine can group on a cheap key and convert only once per group."""
        return self.bucket_start(column, every_us)

    @abstractmethod
    def aggregate(self, agg: str) -> str:
        """SQL aggregate over columns ``value`` and ``ts`` for one of :data:`AGGREGATES`."""

    def filtered_aggregate(self, agg: str, condition: str) -> str:
        """:meth:`aggregate` over the rows where ``condition`` holds (SQL:2003 ``FILTER``), so
        one GROUP BY computes a column per metric (``Warehouse.frame``)."""
        return f"{self.aggregate(agg)} FILTER (WHERE {condition})"

    def fetch_frame(self, conn: Connection, sql: str, params: dict) -> pd.DataFrame:
        """Run a query and return its rows as a DataFrame."""
        result = conn.execute(text(sql), params)
        # Plain tuples: pandas probes each SQLAlchemy Row for attributes (namedtuple,
        # dataclass...) before reading it as a sequence, 3x the cost of the frame itself.
        return pd.DataFrame([tuple(row) for row in result.fetchall()],
                            columns=list(result.keys()))

    def fetch_columns(self, conn: Connection, sql: str, params: dict) -> dict[str, np.ndarray]:
        """Run a query and return its columns as NumPy arrays (NaN for a NULL float, None
        for a NULL object; timestamps as UTC ``datetime64[us]`` or aware datetimes): the
        query layer builds its one DataFrame from them, so no intermediate frame is made."""
        result = conn.execute(text(sql), params)
        names = list(result.keys())
        rows = result.fetchall()
        if not rows:
            return {name: np.empty(0, dtype=object) for name in names}
        return {name: np.array(column, dtype=object) for name, column in zip(names, zip(*rows))}

    def fetch_number_columns(self, conn: Connection, sql: str, params: dict,
                             names: list[str]) -> dict[str, np.ndarray]:
        """:meth:`fetch_columns` of a statement of many rows whose columns ``names`` are all
        numbers; an engine whose driver makes a tuple per row fetches them in bulk."""
        return self.fetch_columns(conn, sql, params)

    def fetch_rows(self, conn: Connection, sql: str, params: dict) -> list[tuple]:
        """Run a query in ``conn``'s transaction (begun if none is) and return its rows."""
        return [tuple(row) for row in conn.execute(text(sql), params).fetchall()]

    def defer_statement(self, conn: Connection, sql: str) -> bool:
        """Ask that ``sql`` (a small query without parameters) be sent with the next
        statement :meth:`fetch_columns` or :meth:`fetch_rows` runs on ``conn``: in its round
        trip and in its snapshot, ahead of it. True if the engine will; its rows are then
        :meth:`deferred_rows`. Default False: the caller runs it itself (where a round trip
        costs nothing, as on an embedded engine, there is nothing to save)."""
        return False

    def deferred_rows(self, conn: Connection) -> list[tuple]:
        """Rows of the statement :meth:`defer_statement` deferred: as read with the statement
        it went with, or, when none has run since, read now (in the same transaction)."""
        raise NotImplementedError(f"{self.dialect} defers no statement")

    def new_snapshot(self, conn: Connection) -> None:
        """Let statements run on ``conn`` again after :class:`SnapshotEnded`, in a transaction
        of their own (the caller answers its call again from the start). Default: nothing
        to do (an engine that never ends a transaction with a deferred statement)."""
        return None

    def local_commits(self) -> int:
        """Commits this process has made to this database (counted after each; 0 where the
        engine does not count them). A state read before the last of them has most likely
        changed, so the query layer reads it rather than assume it (catalog.state_checked);
        other processes' commits are for the check there to find."""
        return 0

    def commit_generation(self) -> int | None:
        """A number that changes after every commit to this database, when the engine can
        know every commit (one writer process: this one); None when it cannot (another
        process may write), so state read from the database must be read again each time."""
        return None

    # -- ingest ---------------------------------------------------------------------------
    @abstractmethod
    def insert_points(self, conn: Connection, batch: pd.DataFrame, rows=None) -> int:
        """Insert points (columns ts_us int64, series_id int32, value float64, run_id str|None)
        skipping any (series_id, ts) already stored. The batch has no duplicate keys.
        ``rows``: the batch as wide rows (ingest/wide.py) when it came as a frame, for an
        engine keeping a pivoted copy of every chunk (DuckDB). Returns the rows written."""

    def insert_series(self, conn: Connection, frame: pd.DataFrame) -> None:
        """Register series (columns metric, labels_key) unless they exist."""
        conn.execute(text(self.sql("ingest/insert_series")),
                     [{"metric": m, "labels": k, "labels_key": k}
                      for m, k in zip(frame["metric"], frame["labels_key"])])

    def table_exists(self, conn: Connection, name: str) -> bool:
        """Whether a warehouse table exists (remembered once true: schemas only grow while a
        process runs, and :meth:`Warehouse.downgrade` clears ``schema_facts``)."""
        key = f"table:{name}"
        if self.schema_facts.get(key):
            return True
        present = conn.execute(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = :t"),
            {"t": name}).scalar_one() > 0
        if present:
            self.schema_facts[key] = True
        return present

    def jobs_schema_present(self, conn: Connection) -> bool:
        """Whether migration 0003 (jobs, rollups, archive) has run; ingest and queries work
        without it. Remembered once true: asked on every query (~0.8 ms a round trip)."""
        if self.schema_facts.get("jobs_schema"):
            return True
        present = bool(conn.execute(text(self.sql("jobs/schema_present"))).scalar_one())
        if present:
            self.schema_facts["jobs_schema"] = True
        return present

    def upsert_series_last(self, conn: Connection, latest: pd.DataFrame) -> None:
        """Move ``series_last`` forward to the newest point per series of a batch (columns
        series_id, ts, value; one row per series)."""
        conn.execute(text(self.sql("ingest/upsert_series_last")),
                     [{"series_id": int(s), "ts": t, "value": float(v)}
                      for s, t, v in zip(latest["series_id"], latest["ts"], latest["value"])])

    @abstractmethod
    def upsert_rows(self, conn: Connection, table: str, frame: pd.DataFrame) -> int:
        """Insert or update ``runs`` or ``step_runs`` rows (JSON columns as text)."""

    # -- chunks ---------------------------------------------------------------------------
    @abstractmethod
    def ensure_chunks(self, conn: Connection, table: str, ts_us: np.ndarray) -> None:
        """Make sure chunks exist for every timestamp (µs) of ``ts_us`` in ``table``."""

    @abstractmethod
    def show_chunks(self, conn: Connection, table: str) -> pd.DataFrame:
        """Chunks of ``table``: chunk_name, range_start, range_end (oldest first)."""

    @abstractmethod
    def drop_chunks(self, conn: Connection, table: str, older_than: datetime) -> list[str]:
        """Drop every chunk of ``table`` that ends at or before ``older_than``."""

    @abstractmethod
    def maintain(self, conn: Connection, now: datetime) -> dict[str, int]:
        """Housekeeping: make chunks ahead of ``now``, move stray rows into chunks."""

    def refresh_statistics(self, engine: Engine) -> list[str]:
        """Bring the planner's statistics up to date where the engine does not do it itself;
        returns the tables analysed (default: none — the engine keeps its own)."""
        return []

    def reclaim_space(self, conn: Connection) -> None:
        """Give the space of deleted rows back, where the engine needs telling (default:
        nothing — dropping a partition already frees it)."""
        return None

    @classmethod
    def reclaim_refused(cls, exc: BaseException) -> str | None:
        """Why the engine refused :meth:`reclaim_space` for now, when ``exc`` is that refusal
        (another transaction in the way: a later attempt succeeds); None for any other error,
        which the caller must raise (default: the engine never refuses)."""
        return None

    def vacuum_chunk(self, chunk: str) -> None:
        """Give back the space of a chunk whose rows the compress job deleted, outside any
        transaction (default: nothing to give back)."""
        return None

    @abstractmethod
    def table_sizes(self, conn: Connection) -> pd.DataFrame:
        """Per warehouse table: table, rows, bytes."""

    @abstractmethod
    def read_only_query(self, conn: Connection, sql: str, params: dict) -> pd.DataFrame:
        """Run one statement that must not write; raise ReadOnlyError if it would."""

    # -- jobs (warehouse/jobs) -----------------------------------------------------------
    def run_script(self, conn: Connection, sql: str, params: dict) -> list[tuple]:
        """Run a job's SQL file with named parameters; return the rows of its last statement.

        The default runs one statement with ``:name`` binds. An engine without stored
        procedures overrides this to run a multi-statement script (see DuckDB).
        """
        return [tuple(row) for row in conn.execute(text(sql), params).fetchall()]

    def fetch_points(self, conn: Connection, sql: str, params: dict) -> pa.Table:
        """Rows of a query returning ``ts, series_id, value, run_id`` as an Arrow table with
        :data:`POINTS_ARROW_SCHEMA` (run_id as text). Engines override this with a bulk path."""
        frame = self.fetch_frame(conn, sql, params)
        run_id = frame["run_id"].map(lambda v: None if v is None or v != v else str(v))
        return pa.table({
            "ts": pa.array(pd.to_datetime(frame["ts"], utc=True)).cast(pa.timestamp("us", "UTC")),
            "series_id": pa.array(frame["series_id"].to_numpy(dtype="i4")),
            "value": pa.array(frame["value"].to_numpy(dtype="f8")),
            "run_id": pa.array(run_id.tolist(), pa.string()),
        }, schema=POINTS_ARROW_SCHEMA)

    # -- change notification (warehouse/changes.py) --------------------------------------
    def notify_change(self, conn: Connection, payload: str) -> None:
        """Tell other processes, when the transaction on ``conn`` commits, that it changed
        what ``payload`` (a :meth:`Change.to_json`) says. Default: no way to, nothing done."""
        return None

    def listen_changes(self, on_payload, stop: threading.Event, on_listen=None) -> None:
        """Call ``on_payload(text)`` for each change other processes notify, until ``stop``
        is set (blocks; run it in a thread); ``on_listen()`` each time listening (re)starts.
        Only where ``capabilities.change_notify``."""
        raise NotImplementedError(f"{self.dialect} cannot notify other processes of changes")

    def read_snapshot(self, conn: Connection) -> None:
        """Make the transaction about to begin on ``conn`` read one snapshot throughout, so a
        query made of several statements sees one state. Default: nothing to do."""
        return None  # an engine whose transactions read one snapshot already (DuckDB)

    def interrupt(self, conn: Connection) -> None:
        """Cancel the statement running on ``conn`` (called from another thread on timeout)."""
        return None  # without a way to cancel, jobs still stop at their next step

    # -- shared helpers -------------------------------------------------------------------
    def chunk_interval_us(self, conn: Connection, table: str) -> int:
        """The chunk interval of a hypertable in µs."""
        row = conn.execute(
            text("SELECT chunk_interval_us FROM hypertables WHERE table_name = :t"), {"t": table}
        ).first()
        if row is None:
            raise UnknownNameError(
                f"unknown hypertable {table!r}; known: points, runs, step_runs"
            )
        return int(row[0])

    def set_chunk_interval(self, conn: Connection, table: str, interval_us: int) -> None:
        """Change the interval used for chunks made from now on (existing ones stay)."""
        self.chunk_interval_us(conn, table)  # raises for an unknown table
        if interval_us <= 0:
            raise ValueError("chunk interval must be positive")
        conn.execute(
            text("UPDATE hypertables SET chunk_interval_us = :i WHERE table_name = :t"),
            {"i": int(interval_us), "t": table},
        )


#: Columns of points as the archive stores them (Parquet) and jobs move them (Arrow).
POINTS_ARROW_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", "UTC")), ("series_id", pa.int32()), ("value", pa.float64()),
    ("run_id", pa.string()),
])

AGGREGATES = ("mean", "min", "max", "sum", "count", "last", "first", "p50", "p95", "p99")
PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def floor_to_bucket(ts_us: np.ndarray | int, every_us: int) -> np.ndarray | int:
    """Start (µs) of the bucket of width ``every_us`` counted from BUCKET_ORIGIN_US."""
    return BUCKET_ORIGIN_US + ((ts_us - BUCKET_ORIGIN_US) // every_us) * every_us


def backend_class(name: str) -> type[Backend]:
    """The backend registered under ``name`` (a SQLAlchemy dialect name such as 'duckdb')."""
    # Import the engine modules so they register themselves.
    from warehouse.backends import duckdb as _duckdb  # noqa: F401
    from warehouse.backends import postgresql as _postgresql  # noqa: F401

    cls = Backend._registry.get(name)
    if cls is None:
        raise UnknownNameError(
            f"no warehouse backend for {name!r}; supported: {', '.join(sorted(Backend._registry))}")
    return cls


def open_backend(url: str) -> Backend:
    """The backend for a database URL, with its engine created by the backend itself."""
    cls = backend_class(make_url(url).get_backend_name())
    return cls(cls.create_engine(url))


def backend_for(engine: Engine) -> Backend:
    """The backend registered for an existing engine's dialect."""
    return backend_class(engine.dialect.name)(engine)
