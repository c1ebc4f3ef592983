"""``Warehouse.frame``: several metrics as one wide table, one column per metric, aligned on
``ts`` and series labels, answered by ONE SQL statement.

The statement reads the points of every chosen series once and pivots in the engine:
``agg(value) FILTER (WHERE metric = k)`` per metric (conditional aggregation), grouped by
time (or bucket) and label group. A ``where`` filter on one metric's value
(``"cpu.usage_user > 90"``) becomes a ``HAVING`` on that metric's column with the number
bound as a parameter; it is parsed strictly (a metric of the frame, a comparison operator,
a number) and never pasted into SQL.

Alignment: with ``by`` (label names), rows are (bucket, by labels) and each metric is
aggregated over the series sharing those labels; without ``by``, a row is one instant (or
bucket) of one label set: the series of the different metrics that carry exactly the same
labels line up (TSBS: the 10 fields of one host).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from warehouse.backends.base import BUCKET_ORIGIN_US, Backend
from warehouse.query.answer import LabelTaker, frame_from_columns, utc_from_us, utc_times
from warehouse.query.archive_read import (
    archived_units,
    compressed_segments,
    points_relation,
)
from warehouse.query.catalog import id_ranges, query_state, select, series_filter
from warehouse.query.frame_readings import copy_read
from warehouse.query.frame_where import readings_where
from warehouse.query.partials import PARTIALS, merge_partials, passing
from warehouse.query.points import (
    check_options,
    group_keys,
    metric_list,
    query_points,
    time_range,
)
from warehouse.query.tiers import plan_tier, raw_overlaps, tier_partials
from warehouse.sqlfiles import sql_fragment
from warehouse.timeparse import epoch_us, interval_us

_OPERATORS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "==": "=", "!=": "<>",
              "<>": "<>"}
_WHERE = re.compile(
    r"^\s*(?P<metric>[^\s<>=!]+)\s*(?P<op><=|>=|<>|!=|==|=|<|>)\s*"
    r"(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class ValueFilter:
    """``metric op number``, parsed from the text a user gave."""

    metric: str
    op: str  # SQL operator, from a fixed list
    value: float


def parse_where(where: str, metrics: list[str]) -> ValueFilter:
    """Parse ``"<metric> <op> <number>"``; ValueError naming what is wrong otherwise."""
    if not isinstance(where, str):
        raise ValueError(f"where must be text like 'cpu.usage_user > 90', not {where!r}")
    match = _WHERE.match(where)
    if match is None:
        raise ValueError(f"where {where!r}: expected '<metric> <op> <number>' with op one of "
                         f"{', '.join(sorted(set(_OPERATORS)))}")
    metric = match["metric"]
    if metric not in metrics:
        raise ValueError(f"where {where!r}: metric {metric!r} is not one of the frame's "
                         f"metrics ({', '.join(metrics)})")
    value = float(match["number"])
    if not np.isfinite(value):
        raise ValueError(f"where {where!r}: the number must be finite")
    return ValueFilter(metric, _OPERATORS[match["op"]], value)


def query_frame(conn: Connection, backend: Backend, metrics, start=None, end=None, *,
                labels: dict | None = None, every=None, agg: str = "mean",
                by: list[str] | None = None, where: str | None = None,
                copies: bool = True) -> pd.DataFrame:
    """See :meth:`warehouse.Warehouse.frame`; ``copies=False`` reads points even where
    compressed chunks' pivoted copies would answer (query/frame_readings.py)."""
    backend.read_snapshot(conn)
    names, _ = metric_list(metrics)
    check_options(agg, None, True)
    start_ts, end_ts = time_range(start, end)
    every_us = interval_us(every) if every is not None else None
    if by is not None and every_us is None:
        raise ValueError("'by' groups buckets across series: give 'every' as well")
    if by is not None and (not isinstance(by, (list, tuple))
                           or not all(isinstance(b, str) for b in by)):
        raise ValueError("by must be a list of label names")
    condition = parse_where(where, names) if where is not None else None
    state = query_state(conn, backend)
    sel = select(conn, backend, names, labels, state)
    key_names = list(by) if by is not None else [
        n for n in sel.label_names() if n not in ("ts", *names)]
    keys, codes = group_keys(sel, key_names, False)
    metric_index = {m: i for i, m in enumerate(names)}
    m_codes = np.array([metric_index[m] for m in sel.metrics], dtype="i8")

    series_ids = [int(s) for s in sel.ids]
    archived = archived_units(conn, backend, None, start_ts, end_ts, schema=True) \
        if state.archived else []
    if archived and not backend.capabilities.parquet_scan:
        # Archived rows are read in Python on this engine: answer from the long form
        # (one points query for every metric) and pivot here, with the same semantics.
        return _pivot_long(conn, backend, names, start, end, labels, every, agg, by,
                           key_names, condition)
    compressed = compressed_segments(conn, backend)
    source, params = points_relation(archived, series_ids, compressed=compressed,
                                     start=start_ts, end=end_ts)
    filters = [series_filter(backend, series_ids)]
    if start_ts is not None:
        filters.append("ts >= :start")
        params["start"] = start_ts
    if end_ts is not None:
        filters.append("ts < :end")
        params["end"] = end_ts
    where_sql = " AND ".join(filters)
    finish = None  # turns fetched rows into (t, grp, v0..) sorted by grp, t, if SQL does not
    partial_rows = None  # the rows to finish when a rollup tier gave them instead of sql
    # Where compressed chunks' pivoted copies cover the range (DuckDB), a frame of several
    # metrics reads them instead of points (query/frame_readings.py): a tier still answers
    # a bucketed frame first, from fewer rows.
    copy_args = (conn, backend, names, series_ids, codes, m_codes, start_ts, end_ts,
                 condition)
    copies = copies and not archived
    copy = copy_read(*copy_args, None, agg) if every_us is None and copies else None
    if copy is None and (every_us is None or agg not in PARTIALS):
        # Statements that pivot in SQL join each point's series to its (group, metric).
        # (Not made for a copy's read: for TSBS's 1,000 series it was 0.55 ms a frame.)
        pairs = ", ".join(f"({s}, {int(g)}, {int(m)})"
                          for s, g, m in zip(series_ids, codes, m_codes))
        mapping = (f"JOIN (VALUES {pairs}) AS g(g_series_id, g_grp, g_m) "
                   f"ON g.g_series_id = points.series_id")
    if copy is not None:
        sql, finish = copy.sql, copy.finish
    elif every_us is None:
        # One series per (label set, metric): the value at an instant is that one point.
        columns = [f"{backend.filtered_aggregate('max', f'g_m = {i}')} AS v{i}"
                   for i in range(len(names))]
        sql = (f"SELECT points.ts AS t, g_grp AS grp, {', '.join(columns)} FROM {source} "
               f"{mapping} WHERE {where_sql} GROUP BY 1, 2")
        if condition is not None:
            sql, finish = readings_where(
                conn, backend, source, archived, mapping, pairs, columns, series_ids,
                np.asarray(codes, dtype="i8"), m_codes, filters,
                metric_index[condition.metric], condition.op, compressed, start_ts, end_ts)
    elif agg in PARTIALS:
        # Partials per (bucket, series), from a rollup tier and raw points where one answers
        # exactly (query/tiers.py), else from raw points; merged per (group, bucket) and
        # metric in NumPy (query/partials.py says why).
        plan = plan_tier(conn, backend, series_ids,
                         epoch_us(start_ts) if start_ts is not None else None,
                         epoch_us(end_ts) if end_ts is not None else None, every_us, agg,
                         schema=state.jobs_schema, marks=state)
        if plan is not None and not raw_overlaps(plan, [(u.start_us, u.end_us)
                                                        for u in archived]):
            partial_rows = tier_partials(conn, backend, plan, agg, every_us, series_ids,
                                         id_ranges(series_ids), compressed=compressed)
        elif copies and (copy := copy_read(
                *copy_args, _bucket(backend, every_us, start_ts), agg)) is not None:
            sql = copy.sql
        else:
            bucket, group, bucket_us = _bucket(backend, every_us, start_ts)
            sql = (f"SELECT {bucket_us} AS t, series_id, p{', n' if agg == 'mean' else ''} "
                   f"FROM (SELECT {bucket} AS bucket, series_id, {PARTIALS[agg]} FROM {source} "
                   f"WHERE {where_sql} GROUP BY {group}, 2) AS points")
        finish = copy.finish if copy is not None else functools.partial(
            merge_partials, agg, series_ids=np.asarray(series_ids, dtype="i8"),
            groups=np.asarray(codes, dtype="i8"), metrics=m_codes, width=len(names))
    else:
        columns = [f"{backend.filtered_aggregate(agg, f'g_m = {i}')} AS v{i}"
                   for i in range(len(names))]
        sql = (f"SELECT {backend.bucket_start('ts', every_us)} AS t, g_grp AS grp, "
               f"{', '.join(columns)} FROM {source} {mapping} WHERE {where_sql} "
               f"GROUP BY {backend.bucket_key('ts', every_us)}, 2")
    if condition is not None:
        params["where_value"] = condition.value
    if condition is not None and every_us is not None and finish is None:
        # Outside the GROUP BY: PostgreSQL does not let HAVING name output columns.
        k = metric_index[condition.metric]
        sql = f"SELECT * FROM ({sql}) AS f WHERE v{k} {condition.op} :where_value"
    if finish is None:
        sql += " ORDER BY grp, t"
    if not series_ids:
        return _empty(names, key_names)
    if partial_rows is not None:
        rows = partial_rows
    elif copy is not None and copy.number_columns is not None:
        rows = backend.fetch_number_columns(conn, sql, params, list(copy.number_columns))
    else:
        rows = backend.fetch_columns(conn, sql, params)
    if copy is not None and not copy.held(conn, backend, rows):  # a copy went: read points
        return query_frame(conn, backend, metrics, start, end, labels=labels, every=every,
                           agg=agg, by=by, where=where, copies=False)
    if finish is not None:
        rows = finish(rows)
        if condition is not None and every_us is not None:
            keep = passing(condition.op, rows[f"v{metric_index[condition.metric]}"],
                           condition.value)
            rows = {name: column[keep] for name, column in rows.items()}
    # Label values typed once per group table and remembered with it (as wh.points does per
    # series): inferring them on every call was half of shaping a small frame.
    memo = sel.memo.setdefault(("frame_labels", tuple(key_names)), {})
    return _shape(rows, names, keys, key_names, every_us is not None, memo)


def _bucket(backend: Backend, every_us: int, start_ts) -> tuple[str, str, str]:
    """The bucket of each point: (expression selected as ``bucket``, expression to GROUP BY,
    the bucket's µs start computed from the ``bucket`` column once per group).

    When every row is at or after the bucket origin (the frame starts there), the engine's
    frame SQL files give a cheap key (DuckDB: an integer division of epoch_us, as the TSBS
    baseline does); otherwise the backend's general floor, exact for any time."""
    if start_ts is not None and start_ts >= _ORIGIN:
        key, start = _templates(backend.sql_folders)
        values = {"column": "ts", "every": int(every_us), "origin": BUCKET_ORIGIN_US}
        key = key.format(**values)
        return key, key, start.format(key="bucket", **values)
    return backend.bucket_start("ts", every_us), backend.bucket_key("ts", every_us), "bucket"


_ORIGIN = pd.Timestamp(BUCKET_ORIGIN_US, unit="us", tz="UTC")


@functools.cache
def _templates(folders: tuple[str, ...]) -> tuple[str, str]:
    """The engine's bucket key and bucket start expressions (``sql/<dialect>/query/``)."""
    return sql_fragment(folders, "query/frame_bucket_key"), sql_fragment(
        folders, "query/frame_bucket_start")


def _shape(rows: dict[str, np.ndarray], names: list[str], keys: pd.DataFrame,
           key_names: list[str], bucketed: bool, memo: dict) -> pd.DataFrame:
    """The frame from fetched columns: label columns typed once per group and taken by
    position (inferring text per row was a quarter of high-cpu-all, py-spy)."""
    grp = np.asarray(rows["grp"], dtype="i8")
    ts = utc_from_us(np.asarray(rows["t"], dtype="i8")) if bucketed else utc_times(rows["t"])
    out = {"ts": ts}
    groups = LabelTaker(len(keys), grp, memo)
    for name in key_names:
        out[name] = groups.column(name, keys[name].to_numpy(dtype=object))
    for i, metric in enumerate(names):
        out[metric] = np.asarray(rows[f"v{i}"], dtype="f8")
    return frame_from_columns(out)


def _empty(names: list[str], key_names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.Series([], dtype="datetime64[us, UTC]"),
                         **{k: pd.Series([], dtype=object) for k in key_names},
                         **{m: pd.Series([], dtype="f8") for m in names}})


def _pivot_long(conn, backend, names, start, end, labels, every, agg, by, key_names,
                condition: ValueFilter | None) -> pd.DataFrame:
    """The frame from the long form (engines that read archived rows in Python)."""
    long = query_points(conn, backend, names, start, end, labels=labels, every=every,
                        agg=agg, by=by, with_labels=key_names if by is None else False)
    index = ["ts", *key_names]
    if long.empty:
        return _empty(names, key_names)
    wide = long.pivot_table(index=index, columns="metric", values="value", aggfunc="max",
                            dropna=False, sort=True).reindex(columns=names)
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    if condition is not None:
        wide = wide[passing(condition.op, wide[condition.metric].to_numpy(dtype="f8"),
                            condition.value)]
    return wide.sort_values(key_names + ["ts"], na_position="last").reset_index(drop=True)


__all__ = ["ValueFilter", "parse_where", "query_frame"]
