"""The ``compress`` job and the ``compression`` policy (issue 15; docs/jobs.md "Compression").

On PostgreSQL each closed chunk of points older than the policy is encoded into
``points_compressed`` (one row per series and segment of up to 1,000 points) and its
partition emptied, in one transaction per chunk (``wh_compress_chunk``, migrations 0010,
0012, 0015): a crash leaves either the rows or the segments. The rows go by DELETE, which
older snapshots still read through; afterwards the chunk is truncated when no snapshot can
read those rows any more (migration 0018), else vacuumed and reindexed. A chunk
the rollups do not cover yet is left for a later run (the refresh reads raw points). A write
into a compressed range decodes the segments it overlaps back into the partition
(``PostgreSQLBackend._decompress_for_write``); such a chunk holds hot rows again, which is
what marks it for the next run. A chunk without hot rows is skipped, so running the job again
changes nothing.

On DuckDB, which stores columns compressed already, the job rewrites each such chunk range
sorted by (series_id, ts), so row-group zone maps on series_id skip other series: a 1-series
12-hour scan of TSBS data went from 49 to 16 ms (docs/tsbs.md, "Compression"). The range's
row count is recorded (``sorted_chunks``); a late write changes it, and the next run sorts
the range again. In the same transaction it makes the range's pivoted copy, which frames of
several metrics read (``jobs/readings.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.jobs.readings import copied_ranges, copy_chunk
from warehouse.jobs.reclaim import reclaim_after_job
from warehouse.timeparse import interval_us, ts_to_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext


@dataclass(frozen=True)
class ChunkResult:
    """What compressing one chunk did: rows encoded, segments written, or why it refused."""

    chunk_name: str
    rows: int
    segments: int
    refused: str | None


def set_policy(wh: Warehouse, after) -> dict:
    """Compress chunks of points once they end more than ``after`` ('7d', a timedelta) ago."""
    after_us = interval_us(after)
    with wh.engine.begin() as conn:
        conn.execute(text(wh.backend.sql("jobs/compression_set")), {
            "after_us": after_us, "now": pd.Timestamp.now(tz="UTC")})
    return {"table_name": "points", "compress_after_us": after_us}


def remove_policy(wh: Warehouse) -> bool:
    """Remove the compression policy; returns whether there was one."""
    with wh.engine.begin() as conn:
        return conn.execute(text(wh.backend.sql("jobs/compression_remove"))).rowcount > 0


def policy_after_us(conn: Connection, backend: Backend) -> int | None:
    """The policy's age in µs, or None without a policy."""
    return conn.execute(text(backend.sql("jobs/compression_policy"))).scalar()


def compress_job(ctx: JobContext) -> int:
    """The scheduled job: every chunk past the policy (none without one); rows encoded
    (DuckDB: rows sorted)."""
    with ctx.wh.engine.connect() as conn:
        after_us = policy_after_us(conn, ctx.wh.backend)
    if after_us is None:
        return 0
    results = compress_chunks(ctx, ctx.now - pd.Timedelta(microseconds=int(after_us)))
    refused = [f"{r.chunk_name}: {r.refused}" for r in results if r.refused]
    if refused:
        ctx.note(f"compress left {len(refused)} chunk(s): " + "; ".join(refused[:10]))
    return sum(r.rows for r in results)


def compress_chunks(ctx: JobContext, older_than: pd.Timestamp) -> list[ChunkResult]:
    """Compress (DuckDB: sort) every chunk of points that ends at or before ``older_than``
    and has changed since, oldest first, one transaction each."""
    backend = ctx.wh.backend
    native = backend.capabilities.native_partitions
    with ctx.wh.engine.connect() as conn:
        todo = _candidates(conn, backend, older_than)
        # PostgreSQL from migration 0018 on: the copy skips the emptied chunk's rows, and
        # the chunk is truncated when no snapshot can read them any more
        reclaims = native and bool(conn.execute(
            text(backend.sql("jobs/reclaim_chunk_present"))).scalar())
        # from 0019 on: a second session encodes the chunk while the job deletes its rows
        beside = native and bool(conn.execute(
            text(backend.sql("jobs/compress_beside_present"))).scalar())
    script = backend.sql("jobs/compress_chunk")
    results = []
    for chunk, start, end in todo:
        ctx.check()
        with _encoder_session(ctx, chunk, beside) as encoder, \
                ctx.transaction(exclusive=True) as conn:
            if beside:
                rows, segments, refused = _compress_beside(ctx, conn, chunk, encoder)
            else:
                [(rows, segments, refused)] = backend.run_script(conn, script, {
                    "chunk": chunk, "start": start, "end": end, "now": ctx.now})
            # and its pivoted copy, where the schema has one (migrations 0016, 0017); on
            # PostgreSQL the encoder has just deleted every row of the chunk
            if not refused and backend.table_exists(conn, "reading_chunks"):
                copy_chunk(conn, backend, start, end, ctx.now, emptied=reclaims)
        results.append(ChunkResult(chunk, int(rows or 0), int(segments or 0), refused))
        if rows and native and not (reclaims and _truncated(ctx, chunk)):
            backend.vacuum_chunk(chunk)  # the deleted rows' space (PostgreSQL)
    if results and not backend.capabilities.native_partitions:
        reclaim_after_job(ctx)  # DuckDB: CHECKPOINT drops the unsorted row groups
    return results


#: Share of the series the job's own session encodes before its DELETE (PostgreSQL, from
#: migration 0019), while the encoder's session encodes the rest: on a TSBS day the DELETE
#: costs ~0.3 CPU µs a point and encoding ~0.5, so both sessions end together at ~0.2.
OWN_SHARE = 0.2


@contextmanager
def _encoder_session(ctx: JobContext, chunk: str, beside: bool) -> Iterator[Connection | None]:
    """A second connection for the encoder, in a transaction holding ACCESS SHARE on the
    chunk from before the job's EXCLUSIVE lock (migration 0019 says why before); None where
    the schema has no staged encoder or the lock is not granted: the job then encodes alone.
    Rolled back on the way out unless the encoder committed."""
    if not beside:
        yield None
        return
    with ctx.wh.engine.connect() as conn:
        granted = conn.execute(text(ctx.wh.backend.sql("jobs/compress_encoder_lock")),
                               {"chunk": chunk}).scalar()
        try:
            yield conn if granted else None
        finally:
            conn.rollback()


def _compress_beside(ctx: JobContext, conn: Connection, chunk: str,
                     encoder: Connection | None) -> tuple[int, int, str | None]:
    """One chunk from migration 0019 on, in the job's transaction ``conn``: lock and check
    it, then encode most of its series into the staging table in ``encoder`` (committed
    there) while ``conn`` encodes the others (:data:`OWN_SHARE`) and deletes its rows, and
    move the segments in; without ``encoder``, ``conn`` encodes them all first. Returns
    (rows, segments, refused) as wh_compress_chunk."""
    backend = ctx.wh.backend
    params = {"chunk": chunk}
    refused = conn.execute(text(backend.sql("jobs/compress_begin")), params).scalar()
    if refused:
        return 0, 0, refused
    encode = text(backend.sql("jobs/compress_encode"))
    empty = text(backend.sql("jobs/compress_empty"))
    if encoder is None:
        conn.execute(encode, {**params, "from": None, "to": None})
        deleted = conn.execute(empty, params).scalar()
    else:
        cut = conn.execute(text(backend.sql("jobs/compress_split")),
                           {"share": OWN_SHARE}).scalar()

        def encode_and_commit() -> None:
            encoder.execute(encode, {**params, "from": cut, "to": None})
            encoder.commit()

        with ThreadPoolExecutor(max_workers=1) as pool:
            encoding = pool.submit(encode_and_commit)
            try:
                if cut is not None:
                    conn.execute(encode, {**params, "from": None, "to": cut})
                deleted = conn.execute(empty, params).scalar()
            except BaseException:
                backend.interrupt(encoder)  # the job stops: so does its encoder
                raise
            encoding.result()
    [(rows, segments, _)] = conn.execute(text(backend.sql("jobs/compress_publish")),
                                         {**params, "deleted": deleted}).all()
    return rows, segments, None


def _truncated(ctx: JobContext, chunk: str) -> bool:
    """Whether the chunk the job emptied (committed) was truncated: TRUNCATE gives its space
    back at once where VACUUM + REINDEX took ~1.5 s for a TSBS day, but only when no snapshot
    can read the deleted rows any more (wh_reclaim_chunk, migration 0018)."""
    backend = ctx.wh.backend
    with ctx.transaction() as conn:
        return bool(conn.execute(text(backend.sql("jobs/reclaim_chunk")),
                                 {"chunk": chunk}).scalar())


def _candidates(conn: Connection, backend: Backend, older_than: pd.Timestamp) -> list[tuple]:
    """(chunk name, start, end) of the chunks to compress: on PostgreSQL those holding hot
    rows, or encoded without a pivoted copy; on DuckDB those never sorted or whose row count
    changed since (a late write), or without a pivoted copy (a write into the range deleted
    it, or it predates the copy)."""
    if backend.capabilities.native_partitions:
        names = ["jobs/compress_candidates"]
        if backend.table_exists(conn, "reading_chunks"):
            names.append("jobs/readings_uncopied")  # encoded, but without a copy
        todo = {tuple(r) for name in names
                for r in conn.execute(text(backend.sql(name)), {"older_than": older_than})}
        return sorted(todo, key=lambda chunk: chunk[1])
    done = {ts_to_us(start): int(rows) for start, rows in conn.execute(
        text(backend.sql("jobs/sorted_chunks"))).fetchall()}
    copied = copied_ranges(conn, backend)
    chunks = backend.show_chunks(conn, "points")
    return [(c.chunk_name, c.range_start, c.range_end)
            for c in chunks[chunks["range_end"] <= older_than].itertuples()
            if done.get(ts_to_us(c.range_start)) != int(c.rows)
            or (copied is not None and ts_to_us(c.range_start) not in copied)]


def compress_now(wh: Warehouse, older_than=None, *, now=None) -> list[ChunkResult]:
    """``warehouse compress``: compress the chunks ending at or before ``now - older_than``
    (default: the policy's age) at once, outside the scheduler. Each chunk is locked and
    checked as in the job, so running it beside the job is safe."""
    from warehouse.jobs.runner import JobContext

    now = pd.Timestamp(now or pd.Timestamp.now(tz="UTC"))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    if older_than is None:
        with wh.engine.connect() as conn:
            after_us = policy_after_us(conn, wh.backend)
        if after_us is None:
            raise ValueError("no compression policy: give --older-than, or set one with "
                             "'warehouse compress policy --after 7d'")
    else:
        after_us = interval_us(older_than)
    return compress_chunks(JobContext(wh, "compress", now),
                           now - pd.Timedelta(microseconds=int(after_us)))


def compression_state(wh: Warehouse) -> dict:
    """Points held in compressed segments (``warehouse info``): compressed_rows,
    compressed_bytes, segments; empty where the engine keeps no segments."""
    with wh.engine.connect() as conn:
        if not (wh.backend.capabilities.native_partitions
                and wh.backend.table_exists(conn, "points_compressed")):
            return {}
        row = conn.execute(text(wh.backend.sql("jobs/compression_state"))).one()
    return dict(row._mapping)
