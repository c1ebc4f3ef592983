"""The ``archive`` job and ``restore``.

archive: each unit of points past an archive policy (a chunk, or one metric's rows of it) is
extracted in bulk, sorted by (series_id, ts), written to
``<root>/<table>/date=YYYY-MM-DD/<chunk>[.m-<metric hash>].parquet`` (zstd) and recorded in
``archive_manifest`` with rows, min/max ts, bytes and sha256, then read back and marked
verified. The steps are ordered so that a run killed at any instant leaves nothing
half-trusted: the file is written under a temporary name, the manifest row is committed
unverified, the file is moved into place, and only a successful read-back marks it verified
— which is what retention requires. A re-run rewrites any unit not verified.

restore: the files of dropped units overlapping a range are checked against the manifest,
their rows inserted back into the hot table (idempotent: existing keys are skipped) and the
unit marked hot again, held for a while so retention does not drop it straight away.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.compute as pc
from sqlalchemy import text

from warehouse.backends.parquet import (
    publish,
    read_points,
    sort_points,
    verify_file,
    write_points_file,
)
from warehouse.backends.paths import archive_root
from warehouse.errors import WarehouseError
from warehouse.jobs.retention import ALL, Unit, units
from warehouse.query.archive_read import archived_units, refresh_all_points_view
from warehouse.timeparse import aware_timestamp, interval_us, ts_to_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext

DEFAULT_HOLD = "7d"


def unit_path(unit: Unit) -> str:
    """Where a unit's file goes, relative to the archive root (hive-style by date)."""
    name = unit.chunk_name
    if unit.metric != ALL:
        name += ".m-" + hashlib.sha1(unit.metric.encode()).hexdigest()[:12]
    return f"{unit.table}/date={unit.start:%Y-%m-%d}/{name}.parquet"


def archive_job(ctx: JobContext, root=None) -> int:
    """Archive every unit past an archive policy; returns rows written to Parquet."""
    wh, backend = ctx.wh, ctx.wh.backend
    base = archive_root(wh.engine, backend, root)
    _remove_stale_temporaries(base)
    with wh.engine.connect() as conn:
        todo = units(conn, backend, ctx.now, archive_only=True)
    written = 0
    for unit in todo:
        ctx.check()
        written += archive_unit(ctx, unit, base)
    refresh_all_points_view(wh.engine, backend)
    return written


def archive_unit(ctx: JobContext, unit: Unit, base: Path) -> int:
    """Archive one unit unless its verified file already holds exactly its rows."""
    backend = ctx.wh.backend
    key = {"table": unit.table, "start": unit.start, "metric": unit.metric}
    with ctx.transaction() as conn:
        entry = conn.execute(text(backend.sql("jobs/manifest_entry")), key).fetchall()
        entry = entry[0] if entry else None
        hot = unit.rows if unit.rows is not None else int(conn.execute(
            text(backend.sql("jobs/count_unit_rows")),
            {"start": unit.start, "end": unit.end, "metric": unit.metric}).scalar_one())
        if hot == 0:
            return 0
        if entry is not None and entry.dropped_at is not None:
            # Ingest refuses writes into dropped units; rows here came another way (SQL
            # written directly into the table). Say so rather than overwrite the archive.
            ctx.note(f"{unit.chunk_name}[{unit.metric}] was archived and dropped, yet holds "
                     f"{hot} hot rows: left alone (restore the range to merge them)")
            return 0
        if entry is not None and entry.verified and int(entry.rows) == hot:
            return 0  # already archived and unchanged
        table = backend.fetch_points(conn, backend.sql("jobs/archive_extract_points"),
                                     {"start": unit.start, "end": unit.end,
                                      "metric": unit.metric})
    if table.num_rows == 0:
        return 0
    table = sort_points(table)
    relative = unit_path(unit)
    final = base / relative
    tmp, sha, size = write_points_file(table, final)
    ts = table.column("ts")
    record = {**key, "end": unit.end, "chunk_name": unit.chunk_name, "root": str(base),
              "path": relative, "rows": table.num_rows, "min_ts": _ts(pc.min(ts)),
              "max_ts": _ts(pc.max(ts)), "bytes": size, "sha256": sha,
              "now": pd.Timestamp.now(tz="UTC")}
    try:
        with ctx.transaction() as conn:
            conn.execute(text(backend.sql("jobs/manifest_record")), record)
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    problem = verify_file(final, table.num_rows, sha)
    if problem is not None:
        ctx.note(f"{unit.chunk_name}[{unit.metric}]: verification failed: {problem}")
        return table.num_rows
    with ctx.transaction() as conn:
        conn.execute(text(backend.sql("jobs/manifest_verified")),
                     {**key, "sha256": sha, "rows": table.num_rows,
                      "now": pd.Timestamp.now(tz="UTC")})
    return table.num_rows


def restore(wh: Warehouse, start, end, *, hold=DEFAULT_HOLD, now=None) -> dict:
    """Bring archived points in [start, end) back into the hot table (idempotent).

    Every dropped unit overlapping the range comes back whole. Returns counts: units,
    rows_read, rows_inserted. Each unit is its own transaction; a unit whose file no longer
    matches its manifest row is refused with an error naming the file.
    """
    start_ts, end_ts = aware_timestamp(start, "from"), aware_timestamp(end, "to")
    if start_ts is None or end_ts is None or end_ts <= start_ts:
        raise ValueError("restore needs a range: --from earlier than --to")
    now_ts = aware_timestamp(now, "now") if now is not None else pd.Timestamp.now(tz="UTC")
    hold_until = now_ts + pd.Timedelta(microseconds=interval_us(hold))
    backend = wh.backend
    with wh.engine.connect() as conn:
        found = [u for u in archived_units(conn, backend, None, start_ts, end_ts)
                 if u.start_us < ts_to_us(end_ts) and u.end_us > ts_to_us(start_ts)]

    counts = {"units": 0, "rows_read": 0, "rows_inserted": 0}
    for unit in found:
        problem = verify_file(unit.path, unit.rows, unit.sha256)
        if problem is not None:
            raise WarehouseError(f"cannot restore: {problem}")
        frame = read_points([unit.path]).to_pandas()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")
        # As in ingest: on a single-writer engine the process's ingest lock fences jobs.
        fence = (backend.write_fence if backend.capabilities.single_writer
                 else contextlib.nullcontext())
        with fence:
            if backend.capabilities.native_partitions:
                with wh.engine.begin() as conn:  # chunk DDL commits on its own, as in ingest
                    backend.ensure_chunks(conn, "points", ts_us)
            with wh.engine.begin() as conn:
                inserted = backend.insert_points(conn, frame) if len(frame) else 0
                conn.execute(text(backend.sql("jobs/manifest_restored")), {
                    "table": "points", "start": pd.Timestamp(unit.start_us, unit="us", tz="UTC"),
                    "metric": unit.metric, "hold_until": hold_until})
        counts["units"] += 1
        counts["rows_read"] += len(frame)
        counts["rows_inserted"] += int(inserted)
    refresh_all_points_view(wh.engine, backend)
    return counts


def _remove_stale_temporaries(base: Path) -> None:
    # Only one archive runner exists (the job lock): any temporary file is a dead run's.
    if base.is_dir():
        for tmp in base.glob("*/date=*/.*.tmp"):
            tmp.unlink(missing_ok=True)


def _ts(scalar) -> pd.Timestamp | None:
    value = scalar.as_py()
    return pd.Timestamp(value) if value is not None else None
