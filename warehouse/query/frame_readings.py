"""``Warehouse.frame`` from the pivoted copy of compressed chunks (jobs/readings.py).

Where every chunk of a frame's range has a copy, a row of ``readings`` holds the values of
every metric of one label set at one instant, so a frame of several metrics is one scan of
those rows: no join lining metrics up (``where=``, TSBS high-cpu-all 104 -> ~10 ms) and one
row to aggregate per instant instead of one per metric (double-groupby-all). Rows are kept
in (entity, ts) order, so a frame of a few label sets skips the others' row groups.

What the copy holds is known from ``reading_chunks``, remembered per commit generation
like the query state (catalog.py), and checked in the frame's own snapshot: its statement
also counts the copies it planned from (``copy_no``); unless all are still there the frame
reads ``points`` and the remembered list is dropped (:meth:`CopyRead.held`). A copy is
deleted with any change to its points (``DuckDBWrites.forget_readings``), so a copy that is
there matches them.

On PostgreSQL a row of the copy is a label set's segment of instants, an array per metric
(migration 0017): frames without buckets unnest them (:func:`_segments_sql`; bucketed ones
read the segments). There is no commit generation to remember the list of copies by, so it
is remembered for a few seconds or until this process makes a copy
(:func:`_copies_postgresql`); the guard column is kept, so :meth:`CopyRead.held` works the
same.

Semantics match the frame over ``points``: a row exists where one of the frame's metrics
has a value (a ``where`` row where its metric passes); bucketed frames merge per-label-set
partials in NumPy (:func:`~warehouse.query.partials.merge_partials`) as they do per series.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.query.catalog import id_ranges
from warehouse.query.partials import PARTIALS, merge_partials
from warehouse.timeparse import epoch_us

_KEY = "readings_copies"  # (commit generation, _Copies) in backend.schema_facts
# PostgreSQL: (time.monotonic(), _Copies or None) in backend.schema_facts
_KEY_POSTGRESQL = "readings_copies_postgresql"
_REMEMBER_S = 10.0


@dataclass(frozen=True)
class _Copies:
    """The copied chunk ranges (µs, sorted) and what their columns and entities mean."""

    starts: np.ndarray
    ends: np.ndarray
    numbers: np.ndarray  # copy_no of each range
    columns: dict[str, int]  # metric -> col (column m<col> of readings)
    series: np.ndarray  # series ids whose label set has an entity, sorted
    entities: np.ndarray  # the entity of each

    def covering(self, start_us: int, end_us: int) -> np.ndarray | None:
        """copy_no of the copies that together cover [start_us, end_us) without a gap,
        or None when some instant of it has no copy."""
        first = np.searchsorted(self.ends, start_us, side="right")
        last = np.searchsorted(self.starts, end_us, side="left")
        if first >= last or self.starts[first] > start_us or self.ends[last - 1] < end_us:
            return None
        if (self.starts[first + 1:last] != self.ends[first:last - 1]).any():
            return None
        return self.numbers[first:last]


@dataclass(frozen=True)
class CopyRead:
    """The statement reading a frame from the copy, and the function turning its fetched
    columns into (t, grp, v0..) sorted by (grp, t)."""

    sql: str
    finish: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    numbers: np.ndarray  # copy_no of the copies read
    #: The statement's columns where they are all numbers, fetched as such
    #: (``Backend.fetch_number_columns``: PostgreSQL's row per instant); None: fetch_columns.
    number_columns: tuple[str, ...] | None = None

    def held(self, conn: Connection, backend: Backend, rows: dict[str, np.ndarray]) -> bool:
        """Whether the copies read were all there in the statement's snapshot: its
        ``copies`` column counts them; with no row to tell, a statement now finding them
        all says the same (a copy never changes under its number: a write extending it
        renumbers it, and one deleted never returns). If not, the remembered list is
        dropped and the caller reads points."""
        if len(rows["copies"]):
            held = int(rows["copies"][0]) == len(self.numbers)
        else:
            held = int(conn.execute(text(_guard(self.numbers))).scalar_one()) == len(
                self.numbers)
        if not held:
            backend.schema_facts.pop(_KEY, None)
            backend.schema_facts.pop(_KEY_POSTGRESQL, None)
        return held


def copy_read(conn: Connection, backend: Backend, names: list[str], series_ids: list[int],
              groups: np.ndarray, m_codes: np.ndarray, start_ts, end_ts, condition,
              bucket: tuple[str, str, str] | None, agg: str) -> CopyRead | None:
    """The frame's statement over ``readings`` when copies cover [start_ts, end_ts), else
    None (read points). ``condition`` is the frame's ValueFilter or None; ``bucket`` the
    (bucket, group key, bucket start) expressions on ``ts`` of a bucketed frame (None: one
    row per instant); ``agg`` one of PARTIALS when bucketed. The caller runs the statement,
    then asks :meth:`CopyRead.held` before finishing its rows."""
    if start_ts is None or end_ts is None or len(names) < 2 or not series_ids:
        return None
    arrays = backend.capabilities.native_partitions  # PostgreSQL: a row holds a segment
    if arrays and bucket is not None:
        return None  # not yet: bucketed frames read the segments there
    copies = _copies_postgresql(conn, backend) if arrays else _copies(conn, backend)
    numbers = copies.covering(epoch_us(start_ts), epoch_us(end_ts)) if copies else None
    if numbers is None:
        return None
    ids = np.asarray(series_ids, dtype="i8")
    at = np.searchsorted(copies.series, ids).clip(max=max(len(copies.series) - 1, 0))
    known = copies.series[at] == ids if len(copies.series) else np.zeros(len(ids), bool)
    entities, first = np.unique(copies.entities[at[known]], return_index=True)
    grp_of = np.asarray(groups, dtype="i8")[known][first]
    # One label set is one group: its series of different metrics must agree.
    index = np.searchsorted(entities, copies.entities[at[known]])
    if len(entities) == 0 or (grp_of[index] != np.asarray(groups, dtype="i8")[known]).any():
        return None
    # One row per instant and group: label sets sharing a group (a label named like one of
    # the frame's metrics is no label column) line up in SQL on points, not here.
    if bucket is None and len(np.unique(grp_of)) < len(grp_of):
        return None
    cols = [copies.columns.get(m) for m in names]
    filters = [id_ranges(entities.tolist(), column="entity"), "ts >= :start", "ts < :end"]
    present = [f"m{c} IS NOT NULL" for c in cols if c is not None]
    if not present:
        filters.append("false")  # none of the frame's metrics has a value in the copy
    elif condition is not None and bucket is None:
        k = names.index(condition.metric)
        filters.append(f"m{cols[k]} {condition.op} :where_value" if cols[k] is not None
                       else "false")
    elif bucket is None:  # a row per instant where one of the frame's metrics has a value
        filters.append(f"({' OR '.join(present)})")
    # (Bucketed: a metric's partial counts only where it had a value, see _buckets, so a
    # bucket of a label set with none of them gives no row without a filter here.)
    where = " AND ".join(filters)
    guard = f"({_guard(numbers)}) AS copies"
    if arrays:
        if not present:
            return None  # no value anywhere in the copy: points answer (nothing) as well
        where_at = (names.index(condition.metric), condition.op) if condition else None
        sql = _segments_sql(cols, filters[0], where_at, epoch_us(start_ts), epoch_us(end_ts),
                            _guard(numbers))
        fetched = ("t", "entity", *(f"v{i}" for i, c in enumerate(cols) if c is not None),
                   "copies")
        return CopyRead(sql, lambda rows: _instants(_typed(rows), entities, grp_of, cols)
                        if rows["entity"][0] is not None else _no_instants(len(cols)), numbers,
                        fetched)
    if bucket is None:
        values = "".join(f", m{c} AS v{i}" for i, c in enumerate(cols) if c is not None)
        sql = f"SELECT ts AS t, entity{values}, {guard} FROM readings WHERE {where}"
        return CopyRead(sql, lambda rows: _instants(rows, entities, grp_of, cols), numbers)
    key, group, start = bucket
    partials = ", ".join(
        PARTIALS[agg].replace("(value)", f"(m{c})").replace(" AS p", f" AS p{i}")
        .replace(" AS n", f" AS n{i}") for i, c in enumerate(cols) if c is not None)
    sql = (f"SELECT {start} AS t, entity, {', '.join(_partial_names(cols, agg))}, {guard} "
           f"FROM (SELECT {key} AS bucket, entity, {partials} FROM readings WHERE {where} "
           f"GROUP BY {group}, 2) AS r")
    return CopyRead(sql, lambda rows: _buckets(rows, agg, entities, grp_of, cols), numbers)


def _segments_sql(cols: list, entity_filter: str, where_at: tuple[int, str] | None,
                  start_us: int, end_us: int, guard: str) -> str:
    """PostgreSQL: the instants of [start_us, end_us) in the copy's segment rows, as rows
    (t µs, entity, v<i>..., copies), for :meth:`Backend.fetch_number_columns`; ``where_at`` the
    (frame position, operator) of a value filter (:func:`_instants_sql`), which first skips
    rows whose least/greatest value of its metric (``lo``/``hi``) cannot pass. With
    no instant, one row of NULLs still carries ``copies``: a statement asking for it after
    the frame's own would end its snapshot (catalog.state_checked answers it again). A row's
    first instant in µs is exact (wh_epoch_us, once per row: OFFSET 0), where float8 seconds
    since the epoch miss µs before 1833 and after 2106."""
    present = [(i, c) for i, c in enumerate(cols) if c is not None]
    filters = [entity_filter, "r.ts_max >= :start", "r.ts_min < :end"]
    kept = [f"t >= {int(start_us)}", f"t < {int(end_us)}"]
    if where_at is None:  # a row per instant where one of the frame's metrics has a value
        kept.append(f"({' OR '.join(f'v{i} IS NOT NULL' for i, _ in present)})")
    elif cols[where_at[0]] is None:
        filters.append("false")  # the filtered metric has no value in the copy
        where_at = None
    # A row per instant, which the fetch folds into one row of arrays sent in binary: as text
    # rows they cost the driver twice the statement's own time (TSBS high-cpu-all, 42k
    # instants: 496 against 305 ms), as text arrays per label set ~90 ms of client CPU
    # (binary: ~30), and grouping them per label set sorted every instant on the server.
    return (f"SELECT hits.*, g.copies FROM ({guard}) AS g(copies) LEFT JOIN ("
            f"SELECT * FROM ({_instants_sql(present, where_at, cols, filters)}) AS q "
            f"WHERE {' AND '.join(kept)}) AS hits ON true")


def _no_instants(width: int) -> dict[str, np.ndarray]:
    """No instant: typed as the points statement's empty answer is (fetched columns)."""
    return {"t": np.empty(0, dtype=object), "grp": np.empty(0, dtype="i8"),
            **{f"v{i}": np.empty(0, dtype="f8") for i in range(width)}}


def _instants_sql(present: list[tuple[int, int]], where_at: tuple[int, str] | None,
                  cols: list, filters: list[str]) -> str:
    """The instants of the segment rows passing ``filters`` as rows (t µs, entity, v<i>...)
    for the frame positions and columns ``present``; with ``where_at`` (frame position,
    operator), only those where that metric passes ``op :where_value``.

    One array is unnested (the filtered metric's), or the positions 1..n generated, and the
    values taken by subscript from one detoasted copy of each array per row (``|| '{}'``: a
    subscript of the stored, compressed array would decompress it at every access). An
    ``unnest`` of every array (ROWS FROM: each function's rows go through a tuplestore)
    took ~5x the statement: TSBS high-cpu-all's 44,866 hits in 174 rows 246-320 -> 48-63
    ms, every instant of 20 label sets' 12 hours 94-171 -> 17-34 ms (same process, load
    4.1-4.6). An array shorter than its row's instants gives NULL past its end, as that
    ``unnest`` padded it."""
    k = where_at[0] if where_at is not None else None
    if where_at is not None:
        col, op = cols[k], where_at[1]
        driver = f"unnest(r.m{col}) WITH ORDINALITY AS h(v, o)"
        filters = [*filters, f"h.v {op} :where_value", *_row_bounds(col, op)]
    else:
        driver = "generate_series(1, r.n) AS h(o)"
    copies = "".join(f", r.m{c} || CAST('{{}}' AS DOUBLE PRECISION[]) AS a{i}"
                     for i, c in present if i != k)
    values = ", ".join(f"h.v AS v{i}" if i == k else f"b.a{i}[h.o] AS v{i}" for i, _ in present)
    return (f"SELECT b.us_min + coalesce(b.offsets[h.o], (h.o - 1) * r.ts_step) AS t, "
            f"r.entity, {values} FROM readings r CROSS JOIN LATERAL (SELECT "
            f"wh_epoch_us(r.ts_min) AS us_min, r.ts_offsets || CAST('{{}}' AS BIGINT[]) AS "
            f"offsets{copies} OFFSET 0) AS b CROSS JOIN LATERAL {driver} "
            f"WHERE {' AND '.join(filters)}")


def _typed(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fetched instants typed: ``t`` µs as ``datetime64[us]``, values float (NULL: NaN)."""
    out = {"entity": np.asarray(rows["entity"], dtype="i8"),
           "t": np.asarray(rows["t"], dtype="i8").view("M8[us]")}
    for name, column in rows.items():
        if name.startswith("v"):
            out[name] = np.asarray(column, dtype="f8")
    return out


def _row_bounds(col: int, op: str) -> list[str]:
    """Filters on a segment row's least/greatest value of metric column ``col`` that every
    row holding a value passing ``op :where_value`` meets (NaN is greater than every number
    in PostgreSQL, in the values and in ``hi`` alike)."""
    if op in (">", ">="):
        return [f"r.hi[{col}] {op} :where_value"]
    if op in ("<", "<="):
        return [f"r.lo[{col}] {op} :where_value"]
    if op == "=":
        return [f"r.lo[{col}] <= :where_value", f"r.hi[{col}] >= :where_value"]
    return []


def _partial_names(cols: list, agg: str) -> list[str]:
    return [name for i, c in enumerate(cols) if c is not None
            for name in ((f"p{i}", f"n{i}") if agg == "mean" else (f"p{i}",))]


def _copies(conn: Connection, backend: Backend) -> _Copies | None:
    """What the copy holds (DuckDB), remembered until the next commit; None where the
    engine does not count commits or the schema has none."""
    generation = backend.commit_generation()
    if generation is None:
        return None
    remembered = backend.schema_facts.get(_KEY)
    # A frame whose earlier statements began its snapshot may be older than a list another
    # frame remembered since, which can name a column this snapshot lacks (a binder error,
    # not a fallback): it reads the list in its own snapshot. (A list older than the
    # snapshot is safe: columns and entities only grow, and the guard counts the copies.)
    if remembered is not None and remembered[0] == generation and not conn.in_transaction():
        return remembered[1]
    if not backend.table_exists(conn, "reading_chunks"):
        return None
    chunks = np.array(conn.execute(text(
        "SELECT epoch_us(chunk_start), epoch_us(chunk_end), copy_no FROM reading_chunks "
        "WHERE copied ORDER BY chunk_start")).fetchall(), dtype="i8").reshape(-1, 3)
    columns = dict(conn.execute(text("SELECT metric, col FROM reading_columns")).fetchall())
    pairs = np.array(conn.execute(text(
        "SELECT s.series_id, e.entity FROM series s JOIN reading_entities e "
        "ON e.labels_key = s.labels_key ORDER BY 1")).fetchall(), dtype="i8").reshape(-1, 2)
    copies = _Copies(chunks[:, 0], chunks[:, 1], chunks[:, 2], columns, pairs[:, 0],
                     pairs[:, 1])
    backend.schema_facts[_KEY] = (generation, copies)
    return copies


def _copies_postgresql(conn: Connection, backend: Backend) -> _Copies | None:
    """What the copy holds (PostgreSQL), remembered for :data:`_REMEMBER_S` or until this
    process copies a chunk (:func:`forget_copies`): another process's compress job may add
    copies meanwhile, which frames then use a little later. Not per commit: a process that
    writes all the time would read it for every frame. A remembered list is never newer
    than a frame's snapshot, so it is safe as DuckDB's is (columns and entities only grow,
    and the guard counts the copies read; one gone, the list is dropped). Reading it costs
    the frame a statement before its own, which ends the one-message snapshot its state
    went in, so that frame is answered again (catalog.state_checked)."""
    now = time.monotonic()
    remembered = backend.schema_facts.get(_KEY_POSTGRESQL)
    if remembered is not None and now - remembered[0] < _REMEMBER_S:
        return remembered[1]
    if not backend.table_exists(conn, "reading_chunks"):
        return None
    rows = backend.fetch_rows(conn, backend.sql("query/readings_copies"), {})
    chunks = sorted((int(a), int(b), int(n)) for kind, a, b, n, _ in rows if kind == "c")
    pairs = sorted((int(a), int(b)) for kind, a, b, _, _ in rows if kind == "e")
    chunks = np.array(chunks, dtype="i8").reshape(-1, 3)
    pairs = np.array(pairs, dtype="i8").reshape(-1, 2)
    columns = {metric: int(a) for kind, a, _, _, metric in rows if kind == "m"}
    copies = _Copies(chunks[:, 0], chunks[:, 1], chunks[:, 2], columns, pairs[:, 0],
                     pairs[:, 1]) if len(chunks) else None
    backend.schema_facts[_KEY_POSTGRESQL] = (now, copies)
    return copies


def forget_copies(backend: Backend) -> None:
    """Drop what frames remember of the copy (PostgreSQL), once a new copy is made here."""
    backend.schema_facts.pop(_KEY_POSTGRESQL, None)


def _guard(numbers: np.ndarray) -> str:
    """How many of the copies numbered ``numbers`` a snapshot holds."""
    return (f"SELECT count(*) FROM reading_chunks WHERE copied AND copy_no IN "
            f"({','.join(str(int(n)) for n in numbers)})")


def _instants(rows: dict[str, np.ndarray], entities: np.ndarray, grp_of: np.ndarray,
              cols: list) -> dict[str, np.ndarray]:
    """(t, grp, v0..) sorted by (grp, t) from rows (t, entity, v<i> of metrics with a
    column); a metric without one has no value anywhere in the copy (NaN)."""
    grp = grp_of[np.searchsorted(entities, np.asarray(rows["entity"], dtype="i8"))]
    # One int64 key (group, then time), sorted stably: the copy is stored in (entity, ts)
    # order, so rows arrive in long sorted runs, which a merge sort takes fast.
    t = np.asarray(rows["t"]).view("i8")
    low, span = int(t.min(initial=0)), int(t.max(initial=0)) - int(t.min(initial=0)) + 1
    if int(grp.max(initial=0)) < 2 ** 62 // span:
        order = np.argsort(grp * span + (t - low), kind="stable")
    else:  # the key would overflow int64
        order = np.lexsort((t, grp))
    out = {"t": rows["t"][order], "grp": grp[order]}
    for i, c in enumerate(cols):
        out[f"v{i}"] = np.asarray(rows[f"v{i}"], dtype="f8")[order] if c is not None \
            else np.full(len(order), np.nan)
    return out


def _buckets(rows: dict[str, np.ndarray], agg: str, entities: np.ndarray,
             grp_of: np.ndarray, cols: list) -> dict[str, np.ndarray]:
    """Per (bucket, label set) partials of each metric, merged per (group, bucket) as
    series partials are: each (label set, metric) is one series there. A metric with no
    value in a bucket of a label set has no partial (as it would have no row)."""
    width = len(cols)
    entity = np.searchsorted(entities, np.asarray(rows["entity"], dtype="i8"))
    long = {"t": [], "series_id": [], "p": [], "n": []}
    for i, c in enumerate(cols):
        if c is None:
            continue
        p = np.asarray(rows[f"p{i}"], dtype="f8")
        n = np.asarray(rows[f"n{i}"], dtype="f8") if agg == "mean" else np.ones(len(p))
        keep = n > 0 if agg == "mean" else (p > 0 if agg == "count" else ~np.isnan(p))
        long["t"].append(np.asarray(rows["t"], dtype="i8")[keep])
        long["series_id"].append(entity[keep] * width + i)
        long["p"].append(p[keep])
        long["n"].append(n[keep])
    merged = {k: np.concatenate(v) if v else np.empty(0) for k, v in long.items()}
    pseudo = np.arange(len(entities) * width, dtype="i8")
    return merge_partials(agg, merged, series_ids=pseudo, groups=np.repeat(grp_of, width),
                          metrics=np.tile(np.arange(width, dtype="i8"), len(entities)),
                          width=width)


__all__ = ["CopyRead", "copy_read", "forget_copies"]
