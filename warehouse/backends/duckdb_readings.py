"""DuckDB: keep the pivoted copy (``readings``, migration 0016) current as wide rows are
written (``Warehouse.write_frame``), so frames of several metrics read one row per label set
and instant on data no job has touched yet (TSBS high-cpu-all on a fresh load: 106 ms over
``points``, about what the compressed copy gives once written; docs/tsbs.md).

A chunk range's copy holds every point of the range or is not listed (``reading_chunks``).
A write keeps that true by extending the copy only where it provably stays whole, and
otherwise deletes it as any other write does (``DuckDBWrites.forget_readings``):

- every point of the batch was new (none skipped as already stored);
- each chunk range the rows fall in is either listed as copied, with exactly the chunk's
  bounds, and holds no row of the batch's label sets at the batch's instants (the rows add
  metrics to nothing already there), or is unlisted and held no point before the batch;
- the metrics fit in :data:`MAX_COLUMNS` columns.

Then the rows go into ``readings`` as they are (missing cells NULL) and every range written
gets a new ``copy_no`` (listed anew, or renumbered): a frame planned from the list before
the write fails its guard and reads points, rather than the rows of the label sets and
metrics its older list knew, which would be half of the write. The compress job later
rewrites the range sorted by label set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from warehouse.backends.base import floor_to_bucket, raw_connection
from warehouse.timeparse import us_to_ts

if TYPE_CHECKING:
    from warehouse.ingest.wide import WideRows

#: Metric columns ``readings`` may hold; a chunk needing more is not copied (its frames
#: read ``points``). DuckDB handles wide tables well, but the copy's one aggregate per
#: column over every point of the chunk grows with it.
MAX_COLUMNS = 256


def extend_copy(backend, conn: Connection, rows: WideRows, points: int, lo, hi) -> bool:
    """Add the batch's ``rows`` (all of whose ``points`` were just written, in ``conn``'s
    transaction) to the copy of the chunk ranges they fall in, if each stays whole; False
    (nothing added) otherwise, and the caller deletes the copies of [lo, hi]."""
    if not len(rows.ts_us) or not backend.table_exists(conn, "reading_chunks"):
        return False
    facts = conn.execute(text(backend.sql("ingest/readings_listed")),
                         {"lo": lo, "hi": hi}).fetchall()
    [interval] = [int(a) for kind, a, _, _, _ in facts if kind == "i"]
    listed = [(a, b, copied) for kind, a, b, copied, _ in facts if kind == "r"]
    chunk = floor_to_bucket(rows.ts_us, interval)
    starts = np.unique(chunk)
    new = []
    for start in starts.tolist():
        end = start + interval
        over = [(a, b, copied) for a, b, copied in listed if a < end and b > start]
        if over == [(start, end, True)]:
            continue
        if over:  # skipped, or made under another chunk interval: left to the compress job
            return False
        cells = (points if len(starts) == 1
                 else int(np.count_nonzero(~np.isnan(rows.values[:, chunk == start]))))
        if _points_in(conn, start, end) != cells:  # the range held points before the batch
            return False
        new.append((start, end))
    columns = _columns(conn, rows.metrics,
                       known={name: int(b) for kind, _, b, _, name in facts if kind == "c"},
                       have={name for kind, _, _, _, name in facts if kind == "h"})
    if columns is None:
        return False
    raw = raw_connection(conn)
    entity = _entities(backend, conn, rows.labels_keys)[rows.label_set]
    stage = pa.table({
        "ts": pa.array(rows.ts_us, pa.int64()).cast(pa.timestamp("us", "UTC")),
        "entity": pa.array(entity, pa.int32()),
        # NaN (a row without the metric's value) is NULL, found only where there is one
        **{f"m{c}": pa.array(rows.values[j], pa.float64(), from_pandas=bool(rows.gaps[j]))
           for j, c in enumerate(columns)}})
    raw.register("_stage_readings", stage)
    try:
        if len(new) < len(starts) and conn.execute(text(backend.sql("ingest/readings_clash")),
                                                   {"lo": lo, "hi": hi}).scalar_one():
            return False
        for start, end in new:  # rows a listing lost without them (none, normally)
            conn.execute(text("DELETE FROM readings WHERE ts >= :s AND ts < :e"),
                         {"s": us_to_ts(start), "e": us_to_ts(end)})
        conn.execute(text("INSERT INTO readings BY NAME SELECT * FROM _stage_readings"))
    finally:
        raw.unregister("_stage_readings")
    for start, end in new:
        conn.execute(text(backend.sql("ingest/readings_list")), {
            "start": us_to_ts(start), "end": us_to_ts(end)})
    for start in sorted(set(starts.tolist()) - {s for s, _ in new}):
        conn.execute(text(backend.sql("ingest/readings_renumber")), {"start": us_to_ts(start)})
    return True


def _points_in(conn: Connection, start: int, end: int) -> int:
    return int(conn.execute(text("SELECT count(*) FROM points WHERE ts >= :s AND ts < :e"),
                            {"s": us_to_ts(start), "e": us_to_ts(end)}).scalar_one())


def _columns(conn: Connection, metrics: list[str], known: dict[str, int],
             have: set[str]) -> list[int] | None:
    """The ``readings`` column number of each metric, numbering new ones and adding their
    columns; None (nothing changed) when the table would pass :data:`MAX_COLUMNS`.
    ``known``: the numbered metrics; ``have``: the columns ``readings`` has."""
    fresh = sorted(set(metrics) - set(known))
    missing = {f"m{known[m]}" for m in metrics if m in known} - have
    if len(have) - 2 + len(fresh) + len(missing) > MAX_COLUMNS:  # ts, entity: no metric
        return None
    top = max(known.values(), default=0)
    for offset, metric in enumerate(fresh, start=1):
        conn.execute(text("INSERT INTO reading_columns (metric, col) VALUES (:m, :c)"),
                     {"m": metric, "c": top + offset})
        known[metric] = top + offset
    for column in sorted({f"m{known[m]}" for m in metrics} - have):
        conn.execute(text(f"ALTER TABLE readings ADD COLUMN {column} DOUBLE"))
    return [known[m] for m in metrics]


def _entities(backend, conn: Connection, labels_keys: np.ndarray) -> np.ndarray:
    """The ``readings`` entity of each label set, numbering new ones (a second statement
    only when there are: a small write usually brings none)."""
    raw = raw_connection(conn)
    raw.register("_stage_label_sets", pa.table({
        "set_no": pa.array(np.arange(len(labels_keys), dtype="i4")),
        "labels_key": pa.array(labels_keys, pa.string())}))
    lookup = text("SELECT s.set_no, e.entity FROM _stage_label_sets s "
                  "JOIN reading_entities e ON e.labels_key = s.labels_key")
    try:
        found = conn.execute(lookup).fetchall()
        if len(found) < len(labels_keys):
            conn.execute(text(backend.sql("ingest/readings_entities")))
            found = conn.execute(lookup).fetchall()
    finally:
        raw.unregister("_stage_label_sets")
    entity = np.zeros(len(labels_keys), dtype="i4")
    for set_no, number in found:
        entity[set_no] = number
    return entity


__all__ = ["MAX_COLUMNS", "extend_copy"]
