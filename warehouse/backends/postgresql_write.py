"""PostgreSQL writes: points by binary COPY (de-duplicated through a staging table when a
batch overlaps stored keys), runs and steps upserted through staging tables, and chunks made
on demand before each write. Mixed into :class:`PostgreSQLBackend`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
from psycopg import sql as pgsql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, text

from warehouse.backends.base import POINTS_ARROW_SCHEMA, floor_to_bucket, raw_connection

# PostgreSQL's binary timestamps count µs from 2000-01-01 UTC:
# https://www.postgresql.org/docs/15/sql-copy.html (binary format) and timestamp.c
_PG_EPOCH_US = 946_684_800_000_000
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
_CHUNK_CACHE_SECONDS = 60.0
# Rows per COPY block (38 bytes each without a run_id): big enough that the per-block costs
# vanish, small enough that the server starts parsing early.
COPY_PART_ROWS = 500_000
_ROW_FIELDS = [("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_sid", ">i4"), ("sid", ">i4"),
               ("l_val", ">i4"), ("val", ">f8"), ("l_run", ">i4")]
# Chunks made per transaction. Each new partition holds ~6-8 locks until commit (the table,
# its index and TOAST, the parent, the default partition); one transaction making every chunk
# of a batch spanning years ran out of the shared lock table ("out of shared memory", sized
# max_locks_per_transaction x max_connections: 64 x 100 by default,
# https://www.postgresql.org/docs/15/runtime-config-locks.html).
CHUNKS_PER_TRANSACTION = 50
# From this many rows a points batch first asks series_last whether it can meet stored keys
# (then it is staged and de-duplicated without a doomed COPY) and which chunk holds it.
BULK_ROWS = 10_000
# From this many rows a points batch that falls inside one chunk that does not exist yet
# loads that chunk as a plain table, indexes it with one sort and attaches it (server CPU of
# a TSBS day 5.4-7.3 s against 8.6-10.2 s for a COPY into an indexed chunk, and half the
# WAL). Below it the usual path's fixed costs are smaller than the index maintenance saved.
NEW_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class NewChunk:
    """A chunk of points that a bulk batch creates itself: its name and bounds (µs)."""

    name: str
    lo_us: int
    hi_us: int


def _as_ts(us) -> pd.Timestamp:
    return pd.Timestamp(int(us), unit="us", tz="UTC")


def _missing(value) -> bool:
    """Whether a cell is a missing value (what ``DataFrame.notna`` calls missing)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def points_copy_payload(batch: pd.DataFrame, order: np.ndarray | None = None) -> bytes:
    """Encode points as a COPY BINARY stream for columns (ts, series_id, value, run_id), rows
    in ``order`` (row positions) when given: :func:`points_copy_parts` joined."""
    return b"".join(points_copy_parts(batch, order))


def points_copy_parts(batch: pd.DataFrame, order: np.ndarray | None = None) -> Iterator:
    """The COPY BINARY stream of :func:`points_copy_payload` as consecutive buffers (header,
    blocks of at most COPY_PART_ROWS rows of one run_id layout, trailer), made as they are
    asked for: with :func:`copy_in` the server parses a block while the next one is encoded
    (a TSBS day's 330 MB took ~1.1 s to encode before the first byte left, and joining the
    blocks would copy them twice more).

    Each block is one numpy structured array (null or 16-byte UUID run_id), so encoding
    costs a few vectorised copies rather than a Python call per row.
    """
    ts = batch["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    series_id = batch["series_id"].to_numpy(dtype="i4")
    value = batch["value"].to_numpy(dtype="f8")
    run_id = batch["run_id"]
    has_run = run_id.notna().to_numpy()
    positions = np.arange(len(batch)) if order is None else order
    yield _COPY_HEADER
    for with_run in (False, True):
        if has_run.any():
            picked = positions[has_run[positions] == with_run]
        else:  # the usual batch: one layout, no mask to apply
            picked = positions[:0] if with_run else positions
        for first in range(0, len(picked), COPY_PART_ROWS):
            at = picked[first:first + COPY_PART_ROWS]
            yield _copy_rows(ts.take(at), series_id.take(at), value.take(at),
                             run_id.iloc[at] if with_run else None)
    yield _COPY_TRAILER


def _copy_rows(ts: np.ndarray, series_id: np.ndarray, value: np.ndarray,
               run_id: pd.Series | None) -> memoryview:
    """COPY BINARY rows of (ts, series_id, value, run_id), run_id null where not given."""
    fields = _ROW_FIELDS + ([("run", "V16")] if run_id is not None else [])
    rows = np.empty(len(ts), dtype=np.dtype(fields))
    rows["n"], rows["l_ts"], rows["l_sid"], rows["l_val"] = 4, 8, 4, 8
    # Byte-swapped in one contiguous pass each, then stored: converting while storing into
    # the packed, unaligned big-endian fields took twice as long.
    rows["ts"] = (ts - _PG_EPOCH_US).astype(">i8")
    rows["sid"] = series_id.astype(">i4")
    rows["val"] = value.astype(">f8")
    if run_id is not None:
        rows["l_run"] = 16
        hex_ids = run_id.astype(str).str.replace("-", "", regex=False)
        rows["run"] = np.frombuffer(bytes.fromhex("".join(hex_ids)), dtype="V16")
    else:
        rows["l_run"] = -1
    return memoryview(rows.view(np.uint8))


def copy_in(raw: psycopg.Connection, statement, parts: Iterable, *, bulk: bool) -> None:
    """Run a COPY ... FROM STDIN of ``parts``. A bulk stream goes through psycopg's queued
    writer: a thread sends each block while this one encodes the next (the server parses
    on another core), instead of waiting for every block to be flushed."""
    cursor = raw.cursor()
    writer = QueuedLibpqWriter(cursor) if bulk else None
    with cursor.copy(statement, writer=writer) as copy:
        for part in parts:
            copy.write(part)


def points_from_copy(payload: bytes) -> pa.Table:
    """Decode a COPY BINARY stream of (timestamptz, integer, double, uuid NOT NULL) rows."""
    # Header: 11-byte signature, 4-byte flags, 4-byte extension length, the extension.
    header = len(_COPY_HEADER) + int.from_bytes(payload[15:19], "big") if payload else 0
    body = memoryview(payload)[header:len(payload) - len(_COPY_TRAILER)] if payload else b""
    rows = np.frombuffer(body, dtype=np.dtype([
        ("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8"), ("l_sid", ">i4"), ("sid", ">i4"),
        ("l_val", ">i4"), ("val", ">f8"), ("l_run", ">i4"), ("run", "V16")]))
    run = rows["run"]
    has_run = run != np.void(bytes(16))
    run_text = np.full(len(rows), None, dtype=object)
    if has_run.any():
        hexes = bytes(run[has_run]).hex()
        run_text[has_run] = [str(uuid.UUID(hexes[i:i + 32])) for i in range(0, len(hexes), 32)]
    return pa.table({
        "ts": pa.array((rows["ts"] + _PG_EPOCH_US).astype("i8")).cast(pa.timestamp("us", "UTC")),
        "series_id": pa.array(rows["sid"].astype("i4")),
        "value": pa.array(rows["val"].astype("f8")),
        "run_id": pa.array(run_text, pa.string()),
    }, schema=POINTS_ARROW_SCHEMA)


def _key_order(series_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows in primary-key order (series_id, then arrival order, which is time order for the
    usual batch) and where each series' run starts in it. COPY then fills each B-tree leaf in
    one run, at the index's right edge, instead of visiting the leaves of every series in
    turn (1.3x faster for 8.6M points of 1,000 series). Ids spanning fewer than 2**16 values, or
    else their ranks, sort in O(n): a stable argsort of 16-bit keys is a radix sort."""
    lowest = int(series_id.min())
    if int(series_id.max()) - lowest < 2**16:  # the usual batch: ids made together
        keys = (series_id - lowest).astype("u2")
    else:
        ranks, _ = pd.factorize(series_id, sort=True)
        keys = ranks.astype("u2") if ranks.max() < 2**16 else ranks
    order = np.argsort(keys, kind="stable")
    return order, _run_starts(series_id[order])


def _run_starts(values: np.ndarray) -> np.ndarray:
    return np.append(0, np.flatnonzero(values[1:] != values[:-1]) + 1)


class PostgreSQLWrites:
    """The write half of the PostgreSQL backend (needs ``sql``, ``table_exists``,
    ``chunk_interval_us``, ``engine`` and ``_chunk_cache`` from it)."""

    # -- ingest ---------------------------------------------------------------------------
    def insert_points(self, conn: Connection, batch: pd.DataFrame, rows=None) -> int:
        # rows (a frame's wide rows) are not needed: the copy is made when a chunk is
        # compressed (migration 0017).
        if batch.empty:
            return 0
        series_id = batch["series_id"].to_numpy(dtype="i4")
        ts_us = batch["ts"].to_numpy(dtype="datetime64[us]").view("i8")
        order, starts = _key_order(series_id)
        ts_sorted = ts_us[order]
        ids = series_id[order][starts]
        first, last = np.minimum.reduceat(ts_sorted, starts), np.maximum.reduceat(ts_sorted, starts)
        self._decompress_for_write(conn, ids, first, last)
        raw = raw_connection(conn)
        columns = "(ts, series_id, value, run_id)"
        small = len(batch) < BULK_ROWS
        if small or not self._may_overlap(conn, ids, first):
            # Every series starts after its newest stored point: COPY straight into the chunk
            # (no routing per row) or, spanning chunks, into the partitioned table. The
            # primary key still has the last word: if a stored key was missed (series_last
            # lags rows inserted by other SQL clients), roll back and de-duplicate below.
            # A small batch skips both look-ups: two round trips would cost it more than a
            # failed COPY of a few rows (a recorder's write is one point).
            target = ("points" if small else
                      self._chunk_holding(conn, "points", int(ts_us.min()), int(ts_us.max())))
            raw.execute("SAVEPOINT wh_points_copy")
            try:
                copy_in(raw, f"COPY {target} {columns} FROM STDIN (FORMAT BINARY)",
                        points_copy_parts(batch, order), bulk=not small)
                raw.execute("RELEASE SAVEPOINT wh_points_copy")
                return len(batch)
            except (psycopg.errors.UniqueViolation, psycopg.errors.UndefinedTable):
                raw.execute("ROLLBACK TO SAVEPOINT wh_points_copy")
        raw.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _stage_points (LIKE points) ON COMMIT DELETE ROWS"
        )
        raw.execute("TRUNCATE _stage_points")
        copy_in(raw, f"COPY _stage_points {columns} FROM STDIN (FORMAT BINARY)",
                points_copy_parts(batch, order), bulk=not small)
        if len(batch) >= BULK_ROWS:  # a temporary table has no statistics otherwise
            raw.execute("ANALYZE _stage_points")
        return conn.execute(text(self.sql("ingest/insert_points")), {
            "lo": _as_ts(ts_us.min()), "hi": _as_ts(ts_us.max())}).rowcount

    def _may_overlap(self, conn: Connection, ids: np.ndarray, first: np.ndarray) -> bool:
        """Whether the batch may hold a stored (series, ts) key, judged from series_last: not
        if each series' first point in the batch is newer than its newest stored one (the
        usual batch of new data). A cheap guess, one indexed read of a row per series."""
        if not self.table_exists(conn, "series_last"):
            return False  # older schemas: try the direct COPY, the primary key decides
        rows = conn.execute(text(self.sql("ingest/series_last_us")),
                            {"ids": ids.astype("i8").tolist()}).fetchall()
        if not rows:
            return False
        stored = dict(rows)
        newest = np.array([stored.get(int(i), np.iinfo("i8").min) for i in ids], dtype="i8")
        return bool((first <= newest).any())

    def _chunk_holding(self, conn: Connection, table: str, lo_us: int, hi_us: int) -> str:
        """The quoted name of the one chunk holding [lo_us, hi_us], else the table's own."""
        name = conn.execute(text(self.sql("ingest/chunk_holding")), {
            "t": table, "lo": _as_ts(lo_us), "hi": _as_ts(hi_us)}).scalar()
        return f'"{name}"' if name else table

    def _decompress_for_write(self, conn: Connection, ids: np.ndarray, first: np.ndarray,
                              last: np.ndarray) -> None:
        """Before points are written: decode the compressed segments that overlap each
        series' time range in the batch (by whole minutes) back into their chunk, so that the
        insert's de-duplication sees every stored key and the rollup refresh finds the raw
        points of the minutes it recomputes (migration 0010, wh_decompress_for_write). The
        chunk is left with hot rows, which the compress job encodes again next run."""
        if not len(ids) or not self.table_exists(conn, "points_compressed"):
            return
        conn.execute(text(self.sql("jobs/decompress_for_write")), {
            "series": ids.astype("i8").tolist(),
            "lo": [_as_ts(v) for v in first], "hi": [_as_ts(v) for v in last]})

    # -- a bulk batch's new chunk ------------------------------------------------------------
    def new_chunk_for(self, conn: Connection, ts_us: np.ndarray,
                      refresh: bool = True) -> NewChunk | None:
        """The chunk of points a batch fills alone, if the batch is bulk, lies inside one
        chunk interval, no chunk exists there and no row of that range is stored outside a
        chunk (in the default partition, or as compressed segments); None otherwise. Bounds
        and name are wh_ensure_chunk's (aligned buckets, clipped so as not to overlap chunks
        made under another interval)."""
        if len(ts_us) < NEW_CHUNK_ROWS:
            return None
        first, last = int(ts_us.min()), int(ts_us.max())
        interval = self.chunk_interval_us(conn, "points")
        lo = int(floor_to_bucket(first, interval))
        hi = lo + interval
        if last >= hi:
            return None
        starts, ends = self._known_chunks(conn, "points", refresh)
        if ((starts <= last) & (ends > first)).any():
            return None
        before, after = ends[ends <= first], starts[starts > first]
        lo = max(lo, int(before.max())) if len(before) else lo
        hi = min(hi, int(after.min())) if len(after) else hi
        bounds = {"lo": _as_ts(lo), "hi": _as_ts(hi)}
        if conn.execute(text(self.sql("ingest/new_chunk_range_used")), bounds).scalar():
            return None
        if (self.table_exists(conn, "points_compressed") and
                conn.execute(text(self.sql("ingest/new_chunk_segments")), bounds).scalar()):
            return None
        # wh_ensure_chunk's to_char(..., 'YYYYMMDD"_"HH24MISS'): the year has 4 digits
        # (strftime's %Y gives 500, not 0500).
        start = _as_ts(lo)
        return NewChunk(f"points_{start.year:04d}{start:%m%d_%H%M%S}", lo, hi)

    def claim_new_chunk(self, conn: Connection, ts_us: np.ndarray) -> NewChunk | None:
        """First in the batch's transaction: lock chunk creation of points until commit and
        return the new chunk the batch will load (:meth:`load_new_chunk`), judged again under
        the lock. If another writer got in first (made the chunk, or left rows in its range
        outside a chunk), make the batch's missing chunks the usual way in this transaction
        and return None: the usual insert path follows. (Only in that race are chunks made
        inside a data transaction, holding wh_ensure_chunk's ACCESS EXCLUSIVE lock on points
        until commit.)"""
        raw_connection(conn).execute(self.sql("ingest/new_chunk_claim"))
        chunk = self.new_chunk_for(conn, ts_us)
        if chunk is not None:
            return chunk
        for ts in self._uncovered(conn, "points", np.array([ts_us.min(), ts_us.max()]), True):
            conn.execute(text("SELECT wh_ensure_chunk('points', :ts)"), {"ts": _as_ts(ts)})
        self._chunk_cache.pop("points", None)
        return None

    def load_new_chunk(self, conn: Connection, chunk: NewChunk, batch: pd.DataFrame) -> int:
        """Write a batch claimed by :meth:`claim_new_chunk`: COPY into a new plain table (made
        in this transaction), its primary key built by one sort, then ATTACH it as a partition
        of points. Not COPY ... FREEZE: frozen rows are visible to every snapshot, and a
        REPEATABLE READ transaction begun before the commit plans the attached partition in
        its next statement, so it saw the batch appear (test_review_s4_ingest.py). Nothing was
        stored in its range, so every row is new (the batch's own keys are unique)."""
        raw = raw_connection(conn)
        names = {"chunk": pgsql.Identifier(chunk.name),
                 "check": pgsql.Identifier(f"{chunk.name}_bound"),
                 "name": pgsql.Literal(chunk.name),
                 "lo": pgsql.Literal(_as_ts(chunk.lo_us).to_pydatetime()),
                 "hi": pgsql.Literal(_as_ts(chunk.hi_us).to_pydatetime())}

        def run(name: str) -> None:
            raw.execute(pgsql.SQL(self.sql(f"ingest/{name}")).format(**names))

        run("new_chunk_create")
        order, _ = _key_order(batch["series_id"].to_numpy(dtype="i4"))
        copy_in(raw, pgsql.SQL(
            "COPY {chunk} (ts, series_id, value, run_id) FROM STDIN (FORMAT BINARY)"
        ).format(**names), points_copy_parts(batch, order), bulk=True)
        run("new_chunk_index")
        run("new_chunk_attach")
        self._chunk_cache.pop("points", None)
        return len(batch)

    def upsert_rows(self, conn: Connection, table: str, frame: pd.DataFrame) -> int:
        raw = raw_connection(conn)
        stage = f"_stage_{table}"
        raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS")
        raw.execute(f"TRUNCATE {stage}")
        columns = ", ".join(frame.columns)
        # Missing values (None, NaN, NaT, NA) as NULL, column by column: a DataFrame-wide
        # astype/where cost ~4 ms of a one-run write.
        values = [[None if _missing(v) else v for v in frame[c].to_numpy(dtype=object)]
                  for c in frame.columns]
        with raw.cursor().copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in zip(*values):
                copy.write_row(row)
        # A run or step keeps one row when its start is corrected: move it first (migration
        # 0005 keys them without started_at; the partitioned table's own key includes it).
        raw.execute(self.sql(f"ingest/move_{table}"))
        return raw.execute(self.sql(f"ingest/upsert_{table}")).rowcount

    def _known_chunks(self, conn: Connection, table: str, refresh: bool = False):
        cached = self._chunk_cache.get(table)
        if refresh or cached is None or time.monotonic() - cached[0] > _CHUNK_CACHE_SECONDS:
            rows = conn.execute(text(
                "SELECT wh_epoch_us(range_start), wh_epoch_us(range_end) FROM wh_chunks "
                "WHERE hypertable = :t ORDER BY range_start"), {"t": table}).fetchall()
            starts = np.array([r[0] for r in rows], dtype="i8")
            ends = np.array([r[1] for r in rows], dtype="i8")
            cached = (time.monotonic(), starts, ends)
            self._chunk_cache[table] = cached
        return cached[1], cached[2]

    def _uncovered(self, conn: Connection, table: str, ts_us: np.ndarray, refresh: bool):
        starts, ends = self._known_chunks(conn, table, refresh)
        idx = np.searchsorted(starts, ts_us, side="right") - 1
        covered = (idx >= 0) & (ts_us < ends[np.clip(idx, 0, None)] if len(ends) else False)
        return ts_us[~covered]

    def vacuum_chunk(self, chunk: str) -> None:
        # The compress job empties a chunk with DELETE, which older snapshots still read
        # through (TRUNCATE was not MVCC-safe: migration 0015). VACUUM then frees the dead
        # rows (truncating the empty heap) once no snapshot needs them, and REINDEX gives
        # back the primary key's pages, which VACUUM leaves allocated. VACUUM cannot run in
        # a transaction block.
        name = pgsql.Identifier(chunk)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            raw = raw_connection(conn)
            raw.execute(pgsql.SQL("VACUUM {}").format(name))
            raw.execute(pgsql.SQL("REINDEX TABLE {}").format(name))

    def ensure_chunks(self, conn: Connection, table: str, ts_us: np.ndarray) -> None:
        """Create the missing chunks for ``ts_us``. ``conn`` is only read: chunks are made in
        short transactions of their own, at most CHUNKS_PER_TRANSACTION each, so a batch
        spanning thousands of days cannot exhaust the lock table. Call it before the data
        transaction; chunks made for a batch that then fails are harmless."""
        if len(ts_us) == 0:
            return
        interval = self.chunk_interval_us(conn, table)
        # The first and last timestamp of each aligned bucket stand for the whole batch.
        frame = pd.DataFrame({"ts": ts_us, "bucket": floor_to_bucket(ts_us, interval)})
        probes = np.unique(frame.groupby("bucket")["ts"].agg(["min", "max"]).to_numpy().ravel())
        if not len(self._uncovered(conn, table, probes, refresh=False)):
            return
        missing = self._uncovered(conn, table, probes, refresh=True)
        try:
            for first in range(0, len(missing), CHUNKS_PER_TRANSACTION):
                with self.engine.begin() as own:
                    for ts in missing[first:first + CHUNKS_PER_TRANSACTION]:
                        own.execute(text("SELECT wh_ensure_chunk(:t, :ts)"), {
                            "t": table, "ts": pd.Timestamp(int(ts), unit="us", tz="UTC")})
        finally:
            self._chunk_cache.pop(table, None)
