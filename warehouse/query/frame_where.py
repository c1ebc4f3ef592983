"""``Warehouse.frame(where=...)`` without buckets: the readings of every metric of a label
set at the instants where one metric passes a value filter (TSBS high-cpu).

Split from :mod:`warehouse.query.frame` because the plan differs by engine and by whether
compressed segments overlap the range; the caller binds ``:where_value`` and the time
bounds, and shapes the rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from sqlalchemy import Connection

from warehouse.backends.base import Backend
from warehouse.errors import UnknownNameError
from warehouse.query.archive_read import points_relation, segments_overlap
from warehouse.sqlfiles import load_sql, sql_fragment


def readings_where(conn: Connection, backend: Backend, source: str, archived: list,
                   mapping: str, pairs: str, columns: list[str], series_ids: list[int],
                   groups: np.ndarray, m_codes: np.ndarray, filters: list[str], k: int, op: str,
                   compressed: bool, start_ts, end_ts) -> tuple[str, Callable | None]:
    """The statement giving (t, grp, v0..vN) where metric ``k`` ``op`` ``:where_value``,
    and None; or a statement and a function turning its fetched columns (dict of arrays)
    into those columns sorted by (grp, t) (then the caller adds no ORDER BY).

    ``filters`` are the frame's conditions on ``points`` (series list first, then time
    bounds); ``mapping`` joins ``points`` to (g_series_id, g_grp, g_m) from ``pairs`` (the
    text of a ``VALUES`` list of those triples: ``series_ids``, ``groups``, ``m_codes``);
    ``columns`` are the per-metric aggregates over ``g_m``."""
    hit_ids = ",".join(str(s) for s, m in zip(series_ids, m_codes) if m == k) or "NULL"
    hit_where = " AND ".join([f"series_id IN ({hit_ids})", *filters[1:]])
    if compressed and segments_overlap(conn, series_ids, start_ts, end_ts):
        hot, _ = points_relation(archived, series_ids)
        ids = np.asarray(series_ids, dtype="i8")
        sql = _decoded_range(backend, hot, columns, filters, hit_ids, hit_where, op, ids,
                             np.asarray(groups, dtype="i8"), m_codes, k,
                             (start_ts is not None, end_ts is not None))
        return sql, functools.partial(sorted_readings, width=len(columns))
    # No compressed segment in the range: the hits first, then only the readings at them.
    # A frame of many series uses the engine's query/frame_where_many.sql where it has one
    # (DuckDB: long rows, pivoted here); otherwise the engine's query/frame_where_probe.sql
    # (wide rows, sorted; PostgreSQL's probes once per hit with the placeholders _per_group
    # gives). finish tells the two apart by their columns.
    many = len(series_ids) >= _MANY_SERIES and _has_sql(backend.sql_folders,
                                                         "query/frame_where_many")
    grp, m, by_series = _series_lookup(np.asarray(series_ids, dtype="i8"), groups, m_codes) \
        if many else ("g.g_grp", "g.g_m", False)
    probe, _ = points_relation(archived, series_ids)
    ids = ",".join(map(str, series_ids)) or "NULL"
    probe_series = sql_fragment(backend.sql_folders, "query/frame_probe_series")
    name = "query/frame_where_many" if many else "query/frame_where_probe"
    template = sql_fragment(backend.sql_folders, name)
    per_group = {}
    if "{hit_groups}" in template:  # the engine's file probes once per hit (PostgreSQL)
        per_group = _per_group(backend, np.asarray(series_ids, dtype="i8"), groups, m_codes,
                               k, len(columns))
        if per_group is None:  # two series of a metric in one group: the max over both
            template, per_group = sql_fragment("common", name), {}
    sql = template.format(
        source=source, mapping=mapping, series_mapping="" if by_series else mapping,
        grp=grp, m=m, pairs=pairs, columns=", ".join(columns), probe=probe,
        probe_series=probe_series.format(ids=ids), hit_where=hit_where, op=op,
        where=" AND ".join(filters),
        probe_bounds="".join(" AND points." + f for f in filters[1:]), **per_group)
    return sql, functools.partial(wide_readings, width=len(columns))


@functools.cache
def _has_sql(folders: tuple[str, ...], name: str) -> bool:
    """Whether an engine's folder chain holds the SQL file ``name``."""
    try:
        load_sql(folders, name)
    except UnknownNameError:
        return False
    return True


def _decoded_range(backend: Backend, hot: str, columns: list[str], filters: list[str],
                   hit_ids: str, hit_where: str, op: str, ids: np.ndarray,
                   groups: np.ndarray, metrics: np.ndarray, k: int,
                   bounded: tuple[bool, bool]) -> str:
    """Compressed segments in the range (PostgreSQL): a probe per (hit, series) would decode
    a whole segment for one reading (TSBS high-cpu-1, 10 hosts compressed: 6 s against 11 ms
    raw). sql/postgresql/query/segments_where_hits.sql unnests the segments of a label set
    that hold hits together where they are aligned (same instants), and reads the readings at
    the other hits the general way; ``hot``: the relation of the points not in segments;
    ``bounded``: whether the frame has a start and an end (``:start``, ``:end``)."""
    width = len(columns)
    per_group = _per_group(backend, ids, groups, metrics, k, width)
    if per_group is not None:
        hit_groups = per_group["hit_groups"]
    else:  # two series of a metric in a group: no id array, so no segment is aligned
        hit_groups = ", ".join(f"({int(s)}, {int(g)}, NULL::integer[])"
                               for s, g, m in zip(ids, groups, metrics) if m == k) \
            or "(NULL::integer, NULL::bigint, NULL::integer[])"
    segment_bounds = (" AND c.ts_max >= :start" if bounded[0] else "") + \
        (" AND c.ts_min < :end" if bounded[1] else "")
    # The 1-based positions of an aligned segment hs within [start, end): whole µs over its
    # step (0 for a segment of one point), rounded up.
    step = "greatest(hs.ts_step, 1)"
    first = (f"1 + (greatest(0, wh_epoch_us(CAST(:start AS TIMESTAMPTZ)) - hs.us_min) "
             f"+ {step} - 1) / {step}") if bounded[0] else "1"
    last = (f"least(hs.n, (greatest(0, wh_epoch_us(CAST(:end AS TIMESTAMPTZ)) - hs.us_min) "
            f"+ {step} - 1) / {step})") if bounded[1] else "hs.n"
    member = sql_fragment(backend.sql_folders, "query/segments_where_member")
    value = sql_fragment(backend.sql_folders, "query/segments_where_value")
    return sql_fragment(backend.sql_folders, "query/segments_where_hits").format(
        hit_ids=hit_ids, hit_groups=hit_groups, op=op, k=k, may_hit=_MAY_HIT[op],
        bounds=" AND ".join(filters[1:]) or "TRUE", segment_bounds=segment_bounds,
        first=first, last=last,
        members=", ".join(member.format(i=i) for i in range(width)),
        decoded=", ".join(value.format(i=i) + f" AS v{i}" for i in range(width)),
        values=", ".join(f"v{i}" for i in range(width)),
        hot=hot, hit_where=hit_where, where=" AND ".join(filters),
        ids=",".join(map(str, ids)) or "NULL", columns=", ".join(columns),
        pairs=f"unnest('{{{_csv(ids)}}}'::integer[], '{{{_csv(groups)}}}'::bigint[], "
              f"'{{{_csv(metrics)}}}'::integer[])")


def _csv(values: np.ndarray) -> str:
    """Whole numbers as the inside of an array literal."""
    return ",".join(str(int(v)) for v in values)


#: Segments of the filtered series that may hold a hit, by their stored minimum and maximum
#: (the values they decode to): the others are not decoded.
_MAY_HIT = {">": "c.max > :where_value", ">=": "c.max >= :where_value",
            "<": "c.min < :where_value", "<=": "c.min <= :where_value",
            "=": "c.min <= :where_value AND c.max >= :where_value",
            "<>": "NOT (c.min = :where_value AND c.max = :where_value)"}


#: From this many series a frame uses the engine's query/frame_where_many.sql (DuckDB: the
#: probe's hash join over a range of many series costs more than long rows joined on (group,
#: ts); TSBS high-cpu-all, 1,000 series, same process, load 3.2: CPU 270-370 -> 190-280 ms,
#: while high-cpu-1, 10 series, is 1.6-2x cheaper as a probe). There a point's group and
#: metric come from arrays indexed by series_id when the ids span at most _LOOKUP_SPAN (an
#: array literal of the span), else through the mapping join (1,000 series: join 250 ms
#: CPU, arrays 229).
_MANY_SERIES = 128
_LOOKUP_SPAN = 65_536


def _series_lookup(ids: np.ndarray, groups: np.ndarray,
                   metrics: np.ndarray) -> tuple[str, str, bool]:
    """SQL expressions for the group and the metric code of ``points.series_id``, and
    whether they stand on their own (array literals indexed by the id), else the mapping's
    columns (the caller joins it)."""
    if int(ids.max() - ids.min()) >= _LOOKUP_SPAN:
        return "g.g_grp", "g.g_m", False
    low, span = int(ids.min()), int(ids.max() - ids.min()) + 1
    index = f"[points.series_id - {low - 1}]"  # SQL arrays count from 1
    return _list_literal(ids - low, np.asarray(groups, dtype="i8"), span) + index, \
        _list_literal(ids - low, np.asarray(metrics, dtype="i8"), span) + index, True


def _per_group(backend: Backend, ids: np.ndarray, groups: np.ndarray, metrics: np.ndarray,
               k: int, width: int) -> dict[str, str] | None:
    """The placeholders of a probe per hit: ``hit_groups``, the rows of a ``VALUES`` list
    ``(series id of metric k, its group, ARRAY[the group's id of metric 0, ..., width-1])``
    (NULL where the group has no series of a metric), and ``group_columns``, the per-metric
    aggregates over a probe's readings picked by position. None when a group holds two series
    of one metric (a label written as JSON null groups with the label missing), which one
    array position cannot hold."""
    groups = np.asarray(groups, dtype="i8")
    metrics = np.asarray(metrics, dtype=np.intp)
    present, rank = np.unique(groups, return_inverse=True)
    if len(np.unique(rank * width + metrics)) < len(ids):
        return None
    table = np.full((len(present), width), "NULL", dtype=object)
    table[rank, metrics] = ids.astype(str)
    arrays = [f"ARRAY[{','.join(row)}]::integer[]" for row in table]
    hits = np.flatnonzero(metrics == k)
    rows = ", ".join(f"({int(ids[i])}, {int(groups[i])}, {arrays[rank[i]]})" for i in hits)
    columns = ", ".join(
        f"{backend.filtered_aggregate('max', f'points.series_id = h.h_ids[{i + 1}]')} AS v{i}"
        for i in range(width))
    return {"hit_groups": rows or "(NULL::integer, NULL::bigint, NULL::integer[])",
            "group_columns": columns}


def _list_literal(positions: np.ndarray, values: np.ndarray, span: int) -> str:
    """``(ARRAY[v, NULL, ...])``: ``values`` at ``positions`` of ``span`` entries (the
    standard array constructor, a LIST on DuckDB)."""
    entries = np.full(span, "NULL", dtype=object)
    entries[positions] = values.astype(str)
    return "(ARRAY[" + ",".join(entries) + "])"


def sorted_readings(rows: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """Wide rows (t, grp, v0..v{width-1}) sorted by (grp, t) from rows in any order whose t
    is µs since the epoch (as datetime64[us], which the frame takes as it is)."""
    t = np.asarray(rows["t"], dtype="i8")
    grp = np.asarray(rows["grp"], dtype="i8")
    order = np.lexsort((t, grp))
    return {"t": t[order].view("datetime64[us]"), "grp": grp[order],
            **{f"v{i}": np.asarray(rows[f"v{i}"], dtype="f8")[order] for i in range(width)}}


def wide_readings(rows: dict[str, np.ndarray], width: int) -> dict[str, np.ndarray]:
    """Wide rows (t, grp, v0..v{width-1}) sorted by (grp, t) from the statement's rows: long
    rows (n, t, grp, m, v) are scattered to row ``n`` (the hit number, in that order) and
    column ``m``; a metric with no reading at a hit stays NaN. Wide rows pass as they are."""
    if "n" not in rows:
        return rows
    n = np.asarray(rows["n"], dtype=np.intp)
    hits = int(n.max()) + 1 if len(n) else 0
    t = np.empty(hits, dtype=rows["t"].dtype)
    t[n] = rows["t"]
    grp = np.empty(hits, dtype="i8")
    grp[n] = rows["grp"]
    values = np.full((width, hits), np.nan)
    values[np.asarray(rows["m"], dtype=np.intp), n] = rows["v"]
    return {"t": t, "grp": grp, **{f"v{i}": values[i] for i in range(width)}}


__all__ = ["readings_where", "sorted_readings", "wide_readings"]
