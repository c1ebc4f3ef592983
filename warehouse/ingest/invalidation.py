"""The ingest side of rollups and archives, called by the writer inside the transaction that
writes a batch of points (so either all of it happens or none):

* points whose minute is already rolled up (below the points_1m watermark) are recorded in
  ``rollup_invalidations`` as per-series ranges of whole minutes; the next refresh
  recomputes exactly those buckets, and queries read them from raw points until then;
* points falling in a unit that retention archived and dropped are refused: archived
  history changes only through ``warehouse archive restore`` (which makes it hot again).

On PostgreSQL the reads below lock rows (FOR SHARE) so that a concurrent refresh or
retention run cannot slip between reading and committing; see the SQL files' headers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend, floor_to_bucket
from warehouse.errors import FieldProblem, ValidationError
from warehouse.model import MINUTE_US
from warehouse.timeparse import ts_to_us, us_to_ts

#: Beyond this many ranges per batch, each series' ranges are merged into one (a superset:
#: the refresh recomputes a little more, never less) to keep the insert small.
MAX_RANGES = 512


def before_points_write(conn: Connection, backend: Backend, series_id: np.ndarray,
                        ts_us: np.ndarray) -> int:
    """Fence, check and record for a batch about to be inserted on ``conn``.

    Raises :class:`ValidationError` for points in archived-and-dropped units. Returns the
    number of invalidation ranges recorded.
    """
    if len(ts_us) == 0 or not backend.jobs_schema_present(conn):
        return 0
    lo, hi = us_to_ts(ts_us.min()), us_to_ts(ts_us.max())
    # Units and watermark in one statement: a round trip is a fifth of a one-point write.
    rows = conn.execute(text(backend.sql("ingest/probe_points_write")),
                        {"lo": lo, "hi": hi}).fetchall()
    dropped = [u for u in rows if u.kind == "unit" and u.dropped_at is not None]
    if dropped:
        _refuse_dropped(conn, dropped, series_id, ts_us)
    watermark = next((r.watermark for r in rows if r.kind == "watermark"), None)
    if watermark is None:
        return 0
    late = ts_us < ts_to_us(watermark)
    if not late.any():
        return 0
    ranges = late_ranges(series_id[late], ts_us[late])
    conn.execute(text(backend.sql("jobs/record_invalidation")), [
        {"series_id": int(s), "range_start": us_to_ts(a), "range_end": us_to_ts(b)}
        for s, a, b in ranges])
    return len(ranges)


def late_ranges(series_id: np.ndarray, ts_us: np.ndarray) -> list[tuple[int, int, int]]:
    """Per series, the distinct minutes of ``ts_us`` collapsed into contiguous ranges
    ``(series_id, start_us, end_us)``."""
    minutes = floor_to_bucket(ts_us.astype("i8"), MINUTE_US)
    pairs = np.unique(np.stack([series_id.astype("i8"), minutes], axis=1), axis=0)
    sid, minute = pairs[:, 0], pairs[:, 1]
    # A new range starts where the series changes or a minute is skipped.
    starts = np.ones(len(pairs), dtype=bool)
    starts[1:] = (sid[1:] != sid[:-1]) | (minute[1:] != minute[:-1] + MINUTE_US)
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(pairs)) - 1
    ranges = [(int(sid[a]), int(minute[a]), int(minute[b]) + MINUTE_US)
              for a, b in zip(first, last)]
    if len(ranges) > MAX_RANGES:
        frame = pd.DataFrame(ranges, columns=["s", "a", "b"]).groupby("s").agg(
            a=("a", "min"), b=("b", "max"))
        ranges = [(int(s), int(a), int(b)) for s, a, b in frame.itertuples(name=None)]
    return ranges


def check_archived(conn: Connection, backend: Backend, metrics: np.ndarray,
                   ts_us: np.ndarray) -> None:
    """Raise :class:`ValidationError` if any point (its metric and µs per row) falls in a unit
    that was archived and dropped. Reads only: ``warehouse ingest`` checks a whole file with
    it before writing its first batch (the write itself checks again, under locks)."""
    if len(ts_us) == 0 or not backend.jobs_schema_present(conn):
        return
    lo, hi = us_to_ts(ts_us.min()), us_to_ts(ts_us.max())
    units = conn.execute(text(backend.sql("jobs/lock_manifest_for_write")),
                         {"lo": lo, "hi": hi}).fetchall()
    dropped = [u for u in units if u.dropped_at is not None]
    if dropped:
        _refuse_hits(dropped, ts_us, lambda metric: metrics == metric)


def _refuse_dropped(conn: Connection, dropped, series_id: np.ndarray, ts_us: np.ndarray) -> None:
    metrics = sorted({u.metric for u in dropped} - {"*"})
    metric_of: dict[int, str] = {}
    if metrics:
        rows = conn.execute(text("SELECT series_id, metric FROM series")).fetchall()
        metric_of = {int(s): m for s, m in rows if m in metrics}
    _refuse_hits(dropped, ts_us, lambda metric: np.array(
        [metric_of.get(int(s)) == metric for s in series_id], dtype=bool))


def _refuse_hits(dropped, ts_us: np.ndarray, of_metric) -> None:
    """Raise for the points of ``ts_us`` inside a dropped unit; ``of_metric(name)`` is the
    mask of rows of that metric."""
    hit = np.zeros(len(ts_us), dtype=bool)
    for unit in dropped:
        inside = (ts_us >= ts_to_us(unit.chunk_start)) & (ts_us < ts_to_us(unit.chunk_end))
        if unit.metric != "*":
            inside &= of_metric(unit.metric)
        hit |= inside
    if not hit.any():
        return
    first = us_to_ts(ts_us[hit].min())
    raise ValidationError("points", [FieldProblem(None, "ts", (
        f"{int(hit.sum())} point(s) (the first at {first.isoformat()}) fall in a range that "
        f"was archived and dropped; run `warehouse archive restore` for that range first"))],
        count=int(hit.sum()))
