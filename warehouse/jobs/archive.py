"""The ``archive`` job and ``restore``.

archive: each unit of points past an archive policy (a chunk, or one metric's rows of it) is
extracted in bulk, sorted by (series_id, ts), written to
``<root>/<warehouse_id>/<table>/date=YYYY-MM-DD/<chunk>[.m-<metric hash>].<sha256:16>.parquet``
(zstd; files 0600, folders 0700) and recorded in ``archive_manifest`` with rows, min/max ts,
bytes, sha256 and the warehouse's identity, then read back and marked verified. The steps are
ordered so that a run killed at any instant leaves nothing half-trusted: the file is written
under a temporary name, the manifest row is committed unverified, the file is linked into
place, and only a successful read-back marks it verified — which is what retention requires.
A re-run rewrites any unit not verified.

Ownership: the folder is the warehouse's identity (migration 0006), so warehouses sharing a
root never share a name; the name carries the content hash, so a new version of a unit never
replaces an old file, and a name that exists is only reused when its bytes are identical
(never overwritten). A superseded file of this warehouse is removed once its successor is
verified.

restore: every file of the dropped units overlapping a range is checked against the manifest
(sha256, rows) before any row is written; then their rows are inserted back into the hot
table (idempotent: existing keys are skipped) from the very bytes that were hashed, and each
unit marked hot again, held for a while so retention does not drop it straight away.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.compute as pc
from sqlalchemy import text

from warehouse.backends.base import POINTS_ARROW_SCHEMA
from warehouse.backends.parquet import (
    ArchiveFileConflict,
    file_sha256,
    private_dirs,
    publish,
    read_verified,
    sort_points,
    verify_file,
    write_points_file,
)
from warehouse.backends.paths import archive_root, warehouse_archive_folder
from warehouse.errors import WarehouseError
from warehouse.jobs.retention import ALL, Unit, units
from warehouse.query.archive_read import archived_units, refresh_all_points_view, resolve
from warehouse.timeparse import aware_timestamp, interval_us, ts_to_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext

DEFAULT_HOLD = "7d"


def warehouse_id(wh: Warehouse) -> str:
    """This warehouse's identity (``warehouse_identity``, made by migration 0006)."""
    with wh.engine.connect() as conn:
        return str(conn.execute(text(wh.backend.sql("jobs/warehouse_identity"))).one()[0])


def unit_folder(unit: Unit, owner: str) -> str:
    """The folder of a unit's files relative to the archive root: the warehouse's own folder,
    then hive-style by table and date."""
    return f"{warehouse_archive_folder(owner)}/{unit.table}/date={unit.start:%Y-%m-%d}"


def unit_stem(unit: Unit) -> str:
    """A unit's file name without its content hash and extension."""
    name = unit.chunk_name
    if unit.metric != ALL:
        name += ".m-" + hashlib.sha1(unit.metric.encode()).hexdigest()[:12]
    return name


def archive_job(ctx: JobContext, root=None) -> int:
    """Archive every unit past an archive policy; returns rows written to Parquet."""
    wh, backend = ctx.wh, ctx.wh.backend
    base = archive_root(wh.engine, backend, root)
    owner = warehouse_id(wh)
    _remove_stale_temporaries(base, owner)
    with wh.engine.connect() as conn:
        todo = units(conn, backend, ctx.now, archive_only=True)
    written = 0
    for unit in todo:
        ctx.check()
        written += archive_unit(ctx, unit, base, owner)
    refresh_all_points_view(wh.engine, backend)
    return written


def archive_unit(ctx: JobContext, unit: Unit, base: Path, owner: str) -> int:
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
    folder = unit_folder(unit, owner)
    stem = unit_stem(unit)
    private_dirs(base, folder)
    tmp, sha, size = write_points_file(table, base / folder / f"{stem}.parquet", metadata={
        "warehouse_id": owner, "table": unit.table, "chunk": unit.chunk_name,
        "metric": unit.metric})
    relative = f"{folder}/{stem}.{sha[:16]}.parquet"
    final = base / relative
    ts = table.column("ts")
    record = {**key, "end": unit.end, "chunk_name": unit.chunk_name, "root": str(base),
              "path": relative, "rows": table.num_rows, "min_ts": _ts(pc.min(ts)),
              "max_ts": _ts(pc.max(ts)), "bytes": size, "sha256": sha,
              "warehouse_id": owner, "now": pd.Timestamp.now(tz="UTC")}
    try:
        with ctx.transaction() as conn:
            conn.execute(text(backend.sql("jobs/manifest_record")), record)
        publish(tmp, final, sha)
    except ArchiveFileConflict as exc:
        # Not ours to replace; the unverified manifest row keeps the unit hot.
        ctx.note(f"{unit.chunk_name}[{unit.metric}]: {exc}")
        return 0
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
    if entry is not None and entry.path != relative:
        _remove_superseded(entry, base, owner)
    return table.num_rows


def restore(wh: Warehouse, start, end, *, hold=DEFAULT_HOLD, now=None, progress=None) -> dict:
    """Bring archived points in [start, end) back into the hot table (idempotent).

    Every dropped unit overlapping the range comes back whole. Returns counts: units,
    rows_read, rows_inserted. Every file is checked against its manifest row (sha256, rows)
    before any row is written: one that is missing or does not match raises
    :class:`~warehouse.errors.WarehouseError` naming it, and nothing is restored. Then each
    unit is its own transaction.
    ``progress(units_done, units_total)`` is called after each unit (the CLI's bar).
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

    # Every file is checked before any row is written: a tampered or missing file stops the
    # whole restore with nothing changed.
    problems = [p for p in (verify_file(u.path, u.rows, u.sha256) for u in found) if p]
    if problems:
        raise WarehouseError(
            f"cannot restore: {len(problems)} of {len(found)} archive file(s) do not match "
            f"their manifest rows; nothing was restored: " + "; ".join(problems[:5]))

    counts = {"units": 0, "rows_read": 0, "rows_inserted": 0}
    for unit in found:
        # The rows inserted are decoded from the bytes hashed now, not re-read afterwards.
        table, problem = read_verified(unit.path, unit.rows, unit.sha256)
        if problem is not None:
            raise WarehouseError(f"cannot restore (the file changed during the restore; "
                                 f"{counts['units']} unit(s) restored before it): {problem}")
        frame = table.cast(POINTS_ARROW_SCHEMA).to_pandas()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")
        # As in ingest: on a single-writer engine the process's ingest lock fences jobs.
        with backend.job_fence():
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
        if progress:
            progress(counts["units"], len(found))
    refresh_all_points_view(wh.engine, backend)
    return counts


def _remove_stale_temporaries(base: Path, owner: str) -> None:
    # Only one archive runner of this warehouse exists (the job lock): any temporary file in
    # its own folder is a dead run's. Other warehouses' folders are theirs to clean.
    mine = base / warehouse_archive_folder(owner)
    if mine.is_dir():
        for tmp in mine.glob("*/date=*/.*.tmp"):
            tmp.unlink(missing_ok=True)


def _remove_superseded(entry, base: Path, owner: str) -> None:
    """Delete the file an older manifest row of a unit named, now that a verified successor
    replaced the row — only if it lies in this warehouse's folder and still holds the bytes
    that row recorded (anything else is not ours to delete)."""
    if entry.warehouse_id is None or str(entry.warehouse_id) != owner:
        return
    old = resolve(entry.root, entry.path)
    mine = (base / warehouse_archive_folder(owner)).resolve()
    try:
        if not old.resolve().is_relative_to(mine) or file_sha256(old) != entry.sha256:
            return
        old.unlink()
    except OSError:
        return  # gone already, or unreadable: leave it


def _ts(scalar) -> pd.Timestamp | None:
    value = scalar.as_py()
    return pd.Timestamp(value) if value is not None else None
