"""Reading archived points back: which files hold a query's range, the rows in them, the raw
points relation that includes them on engines that scan Parquet in SQL (and compressed
segments of closed chunks on PostgreSQL), and DuckDB's ``all_points`` view.

Only units whose rows have left the hot table (``dropped_at`` set) are read from files: a
unit that is archived but still hot is read from ``points``, so no row is read twice.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, text

from warehouse.backends.base import Backend
from warehouse.backends.parquet import read_points
from warehouse.model import ARCHIVE_ENV
from warehouse.timeparse import ts_to_us


@dataclass(frozen=True)
class ArchivedUnit:
    """One archive file whose rows are no longer hot."""

    path: Path
    start_us: int
    end_us: int
    metric: str
    rows: int
    sha256: str


def resolve(root: str, path: str) -> Path:
    """The file of a manifest row: WAREHOUSE_ARCHIVE relocates the whole archive."""
    return Path(os.environ.get(ARCHIVE_ENV) or root) / path


def archived_units(conn: Connection, backend: Backend, metric: str | None = None,
                   start=None, end=None, *, schema: bool | None = None) -> list[ArchivedUnit]:
    """Dropped archive units of points that may hold ``metric`` (None: any) in [start, end).
    ``schema``: whether the jobs schema exists, if the caller knows."""
    if not (backend.jobs_schema_present(conn) if schema is None else schema):
        return []
    rows = conn.execute(text(backend.sql("jobs/archived_units")),
                        {"metric": metric, "start": start, "end": end}).fetchall()
    return [ArchivedUnit(resolve(r.root, r.path), ts_to_us(r.chunk_start), ts_to_us(r.chunk_end),
                         r.metric, int(r.rows), r.sha256) for r in rows]


def archived_frame(units: list[ArchivedUnit], series_ids: list[int], start=None,
                   end=None) -> pd.DataFrame:
    """Archived rows (ts, series_id, value, run_id) of some series in [start, end)."""
    table = read_points([u.path for u in units], series_ids, start, end)
    return typed_points(table.to_pandas())


def typed_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Point rows with fixed dtypes: ts UTC datetime, series_id int64, value float64, run_id
    object. A driver returns object columns for an empty result; concatenated with archived
    rows they would make ``value`` object, which pandas cannot take a quantile of."""
    return frame.assign(ts=pd.to_datetime(frame["ts"], utc=True),
                        series_id=frame["series_id"].astype("int64"),
                        value=frame["value"].astype("float64"),
                        run_id=frame["run_id"].astype(object))


def with_archived_rows(hot: pd.DataFrame, units: list[ArchivedUnit], series_ids: list[int],
                       start=None, end=None) -> pd.DataFrame:
    """Hot rows (ts, series_id, value, run_id) plus the archived rows of ``units`` in
    [start, end), typed (:func:`typed_points`); a row restored into the hot table while its
    file is still listed counts once (the hot copy)."""
    frame = pd.concat([typed_points(hot), archived_frame(units, series_ids, start, end)],
                      ignore_index=True)
    return frame.drop_duplicates(["series_id", "ts"], keep="first").reset_index(drop=True)


def compressed_segments(conn: Connection, backend: Backend) -> bool:
    """Whether raw reads must include compressed segments (``points_compressed``, engines
    with native partitions from migration 0010 on). No round trip once the table is known:
    the segment branch costs an index probe when nothing is compressed, less than asking."""
    return (backend.capabilities.native_partitions
            and backend.table_exists(conn, "points_compressed"))


def oldest_compressed_us(conn: Connection, backend: Backend, series_ids: list[int]) -> int | None:
    """µs of the oldest compressed point of ``series_ids`` (None: none compressed)."""
    if not series_ids or not compressed_segments(conn, backend):
        return None
    ids = ",".join(str(int(s)) for s in series_ids)
    oldest = conn.execute(text(
        f"SELECT min(ts_min) FROM points_compressed WHERE series_id IN ({ids})")).scalar()
    return None if oldest is None else ts_to_us(oldest)


def segments_overlap(conn: Connection, series_ids: list[int], start=None, end=None) -> bool:
    """Whether any compressed segment of ``series_ids`` holds points in [start, end)."""
    ids = ",".join(str(int(s)) for s in series_ids) or "NULL"
    bounds, params = _segment_bounds("points_compressed", start, end)
    return bool(conn.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM points_compressed WHERE series_id IN ({ids}){bounds})"),
        params).scalar())


def _segment_bounds(alias: str, start, end) -> tuple[str, dict]:
    """`` AND ...`` conditions keeping the segments of ``alias`` that reach into [start, end)."""
    bounds, params = "", {}
    if start is not None:
        bounds += f" AND {alias}.ts_max >= :compressed_start"
        params["compressed_start"] = start
    if end is not None:
        bounds += f" AND {alias}.ts_min < :compressed_end"
        params["compressed_end"] = end
    return bounds, params


def points_relation(units: list[ArchivedUnit], series_ids: list[int], *,
                    compressed: bool = False, start=None, end=None) -> tuple[str, dict]:
    """SQL for a relation ``points`` (ts, series_id, value, run_id) holding every raw point
    of ``series_ids``: the hot table, plus archived rows of ``units`` (engines with
    ``capabilities.parquet_scan``; the file list is a bind parameter), plus, if
    ``compressed`` (:func:`compressed_segments`), the decoded segments of closed chunks.
    ``start``/``end`` bound the segments read (their ts_min/ts_max); the caller's own time
    condition on the relation still applies to every row."""
    if not units and not compressed:
        return "points", {}
    ids = ",".join(str(int(s)) for s in series_ids) or "NULL"
    parts, params = ["SELECT ts, series_id, value, run_id FROM points"], {}
    if units:
        parts.append("SELECT ts, series_id, value, CAST(run_id AS UUID) AS run_id "
                     "FROM read_parquet(:archive_files, hive_partitioning = false) "
                     f"WHERE series_id IN ({ids})")
        params["archive_files"] = [str(u.path) for u in units]
    if compressed:
        # One branch per timestamp form (migration 0013): each is a plain function scan per
        # segment, so a decode of many segments can run in parallel workers, which
        # wh_segment_points (both forms in one UNION ALL) ruled out.
        # A regular segment is also sliced to [start, end) before it becomes rows (0014).
        bounds, bound_params = _segment_bounds("c", start, end)
        params.update(bound_params)
        values = "c.vals, c.vals_real, c.vals_int, c.vals_decimals, c.run_ids"
        # The end is clipped to the segment's own (0014's function counts the points up to
        # it as an integer: an end a month past a segment of 1 ms steps overflowed it).
        since, until = (("CAST(:compressed_start AS TIMESTAMPTZ)" if start is not None else
                         "CAST(NULL AS TIMESTAMPTZ)"),
                        ("LEAST(CAST(:compressed_end AS TIMESTAMPTZ), "
                         "c.ts_max + INTERVAL '1 microsecond')" if end is not None else
                         "CAST(NULL AS TIMESTAMPTZ)"))
        for decode, form in (
                (f"wh_regular_segment_points(c.ts_min, c.ts_step, {values}, {since}, {until})",
                 "IS NOT NULL"),
                (f"wh_irregular_segment_points(c.ts_min, c.ts_deltas, {values})", "IS NULL")):
            parts.append(f"SELECT s.ts, c.series_id, s.value, s.run_id FROM points_compressed c "
                         f"CROSS JOIN LATERAL {decode} s "
                         f"WHERE c.series_id IN ({ids}) AND c.ts_step {form}{bounds}")
    return f"({' UNION ALL '.join(parts)}) AS points", params


def refresh_all_points_view(engine: Engine, backend: Backend) -> int:
    """Re-create ``all_points`` over the hot table and every dropped archive file (engines
    that scan Parquet; elsewhere the view is fixed by the migration). Returns files listed.

    The files are listed rather than globbed: a glob would also match files of units that
    are still hot (double counting) and of units being rewritten. Jobs running side by side
    in one process would collide re-creating the view (a catalog write-write conflict), so
    this is serialised per process and skipped when the file list has not changed.
    """
    if not backend.capabilities.parquet_scan:
        return 0
    with _VIEW_LOCK, engine.begin() as conn:
        units = archived_units(conn, backend)
        files = tuple(str(u.path) for u in units)
        if _VIEW_FILES.get(engine) == files:
            return len(files)
        if not files:
            conn.exec_driver_sql(backend.sql("jobs/all_points_view_hot"))
        else:
            # DDL takes no bind parameters, so the paths are rendered as quoted SQL literals
            # (and the statement goes to the driver as is: a ':' in a path is not a bind).
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            conn.exec_driver_sql(backend.sql("jobs/all_points_view").replace("{files}", listed))
    _VIEW_FILES[engine] = files
    return len(files)


_VIEW_LOCK = threading.Lock()
_VIEW_FILES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
