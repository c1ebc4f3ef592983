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
from warehouse.timeparse import ts_to_us, us_to_ts


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


def _segment_bounds(alias: str, start, end, name: str = "compressed") -> tuple[str, dict]:
    """`` AND ...`` conditions keeping the segments of ``alias`` that reach into [start, end),
    bound as ``:<name>_start`` / ``:<name>_end``."""
    bounds, params = "", {}
    if start is not None:
        bounds += f" AND {alias}.ts_max >= :{name}_start"
        params[f"{name}_start"] = start
    if end is not None:
        bounds += f" AND {alias}.ts_min < :{name}_end"
        params[f"{name}_end"] = end
    return bounds, params


def _regular_slice(start, end, name: str) -> str:
    """SELECT lo, hi: the 0-based points lo .. hi - 1 of regular segment ``c`` that lie in
    [start, end) (bound by ``:<name>_start`` / ``:<name>_end``; None: unbounded).

    This is migration 0014's wh_regular_segment_points, written out here so that the point
    count is the segment's ``n`` column: the function took it from the cardinality of the
    values array, and as an inlined SQL function each use of that count detoasted the whole
    array again (three times a segment, then once more for the slice: 15 buffers a segment,
    TSBS groupby-orderby-limit compressed; the column leaves the slice's one).
    A point's index is its µs offset over the step: date_part's float8 seconds, rounded, are
    exact µs within a chunk (the segment's own), and a quotient of such integers that is
    whole comes out whole. The end is clipped to the segment's own, so the count up to it
    fits an integer (an end a month past a segment of 1 ms steps overflowed it)."""
    since = f"CAST(:{name}_start AS TIMESTAMPTZ)"
    lo = ("0" if start is None else
          f"CASE WHEN {since} <= c.ts_min THEN 0 ELSE least(c.n, ceil(round(date_part("
          f"'epoch', {since} - c.ts_min) * 1000000) / greatest(c.ts_step, 1))::integer) END")
    until = f"LEAST(CAST(:{name}_end AS TIMESTAMPTZ), c.ts_max + INTERVAL '1 microsecond')"
    hi = ("c.n" if end is None else
          f"CASE WHEN {until} <= c.ts_min THEN 0 WHEN c.ts_step = 0 THEN 1 "  # one point
          f"ELSE least(c.n, ceil(round(date_part('epoch', {until} - c.ts_min) * 1000000) "
          f"/ c.ts_step)::integer) END")
    return f"SELECT {lo} AS lo, {hi} AS hi"


#: The points lo .. hi - 1 of regular segment ``c`` (:func:`_regular_slice` gives ``b``) as
#: rows ts, value, run_id; an empty range gives none. The division is the encoder's own
#: check (wh_compress_chunk), so it gives back each value exactly.
_REGULAR_POINTS = (
    "SELECT u.t AS ts, CASE WHEN c.vals_decimals > 0 "
    "THEN u.v / 10::double precision ^ c.vals_decimals ELSE u.v END AS value, u.r AS run_id "
    "FROM ROWS FROM (generate_series(c.ts_min + (b.lo * c.ts_step) * INTERVAL '1 microsecond', "
    "c.ts_min + ((b.hi - 1) * c.ts_step) * INTERVAL '1 microsecond', "
    "greatest(c.ts_step, 1) * INTERVAL '1 microsecond'), "
    "unnest(coalesce(c.vals[b.lo + 1 : b.hi], c.vals_real[b.lo + 1 : b.hi]::double precision[], "
    "c.vals_int[b.lo + 1 : b.hi]::double precision[])), "
    "unnest(c.run_ids[b.lo + 1 : b.hi])) AS u(t, v, r)")


def _windows(start, end, spans_us, series: int) -> list[tuple]:
    """[since, until) windows of regular segments to decode: ``spans_us`` merged where they
    touch or overlap (a point in two windows would come out twice), as timestamps, or the
    read's own bounds where spans are not given, too many (_MAX_WINDOWS) or the read is
    small (_ONE_WINDOW_SERIES_SECONDS)."""
    if not spans_us or (start is not None and end is not None and series * (
            end - start).total_seconds() <= _ONE_WINDOW_SERIES_SECONDS):
        return [(start, end)]
    low = float("-inf")
    merged: list[list] = []
    for a, b in sorted(spans_us, key=lambda span: low if span[0] is None else span[0]):
        a_key = low if a is None else a
        if merged and (merged[-1][1] is None or a_key <= merged[-1][1]):
            if merged[-1][1] is not None and (b is None or b > merged[-1][1]):
                merged[-1][1] = b
            continue
        merged.append([a, b])
    if len(merged) > _MAX_WINDOWS:
        return [(start, end)]
    return [(None if a is None else us_to_ts(a), None if b is None else us_to_ts(b))
            for a, b in merged]


#: Windows beyond this many are read as one: each is a branch the planner plans.
_MAX_WINDOWS = 4
#: A read of at most this many series × seconds decodes its whole range as one window: a
#: branch costs ~0.5 ms to plan and start (PostgreSQL 15, this machine), more than decoding
#: the points between a tier plan's two edges of one series' hour (TSBS single-groupby-1-1-1:
#: 360 points; a call's median 4.3 -> 3.8 ms, same process, load 3; docs/tsbs.md "Session 6").
_ONE_WINDOW_SERIES_SECONDS = 4 * 3600


def points_relation(units: list[ArchivedUnit], series_ids: list[int], *,
                    compressed: bool = False, start=None, end=None,
                    spans_us: list[tuple[int | None, int | None]] | None = None
                    ) -> tuple[str, dict]:
    """SQL for a relation ``points`` (ts, series_id, value, run_id) holding every raw point
    of ``series_ids``: the hot table, plus archived rows of ``units`` (engines with
    ``capabilities.parquet_scan``; the file list is a bind parameter), plus, if
    ``compressed`` (:func:`compressed_segments`), the decoded segments of closed chunks.
    ``start``/``end`` bound the segments read (their ts_min/ts_max); the caller's own time
    condition on the relation still applies to every row. ``spans_us``: the [start, end)
    ranges (µs, None: unbounded) inside those bounds that the caller keeps rows of; regular
    segments are then pruned and sliced per span, so the segments between a tier plan's two
    raw edges are not decoded."""
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
        for i, (since, until) in enumerate(_windows(start, end, spans_us, len(series_ids))):
            name = "compressed" if i == 0 else f"compressed_{i}"
            span_bounds, span_params = _segment_bounds("c", since, until, name)
            params.update(span_params)
            parts.append(f"SELECT s.ts, c.series_id, s.value, s.run_id FROM points_compressed "
                         f"c CROSS JOIN LATERAL ({_regular_slice(since, until, name)}) b "
                         f"CROSS JOIN LATERAL ({_REGULAR_POINTS}) s "
                         f"WHERE c.series_id IN ({ids}) AND c.ts_step IS NOT NULL{span_bounds}")
        # Irregular segments (none where every gap is the same) are decoded whole within the
        # read's bounds; the caller's condition keeps the rows of its spans.
        bounds, bound_params = _segment_bounds("c", start, end, "irregular")
        params.update(bound_params)
        parts.append(f"SELECT s.ts, c.series_id, s.value, s.run_id FROM points_compressed c "
                     f"CROSS JOIN LATERAL wh_irregular_segment_points(c.ts_min, c.ts_deltas, "
                     f"c.vals, c.vals_real, c.vals_int, c.vals_decimals, c.run_ids) s "
                     f"WHERE c.series_id IN ({ids}) AND c.ts_step IS NULL{bounds}")
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
