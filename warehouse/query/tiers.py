"""Reading rollups for ``Warehouse.points``: which tier answers a bucketed query, and the SQL
that merges materialised buckets with raw points so the answer equals raw aggregation.

A query ``every=E, agg=A`` over [start, end) can use tier T (width W) when A is one of
:data:`~warehouse.model.ROLLUP_AGGREGATES` and E is a multiple of W: every output
bucket is then a union of whole tier buckets. The coarsest such tier is used. Its rows
answer the aligned part [ceil_W(start), min(floor_W(end), watermark)), minus the tier
buckets overlapping pending invalidations; raw points answer the rest (the unaligned
edges, the not yet materialised tail, the stale buckets). Each tier bucket comes from
exactly one side, so nothing is counted twice. When E = W and each series is its own group
(the usual dashboard read), no output bucket has rows from both sides: a tier row is the
answer for its bucket as it stands and only raw points are aggregated. Otherwise both sides
become partial aggregates per series and output bucket, merged per output bucket.

Bucket starts stay timestamps in SQL (no epoch arithmetic per row): :func:`read_tier`
fetches them in bulk and sorts in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend, floor_to_bucket
from warehouse.model import ROLLUP_AGGREGATES, TIERS
from warehouse.query.archive_read import points_relation
from warehouse.query.catalog import series_filter
from warehouse.query.partials import PARTIALS
from warehouse.sqlfiles import sql_fragment
from warehouse.timeparse import ts_to_us, us_to_ts

#: More stale ranges than this and they are coarsened (any superset of the stale buckets is
#: exact, as long as both sides use the same set), so the SQL stays small.
MAX_STALE_TERMS = 32


@dataclass
class TierPlan:
    """How one query reads a tier. Times are µs since the Unix epoch; None = unbounded."""

    table: str
    width_us: int
    lo: int | None  # rollup rows answer buckets in [lo, hi) ...
    hi: int
    stale: list[tuple[int, int, list[int]]] = field(default_factory=list)  # ... except these
    raw: list[tuple[int | None, int | None]] = field(default_factory=list)  # raw points here


def plan_tier(conn: Connection, backend: Backend, series_ids: list[int], start_us: int | None,
              end_us: int | None, every_us: int, agg: str, *,
              schema: bool | None = None, marks=None) -> TierPlan | None:
    """The plan for answering from a rollup, or None when raw points must answer.
    ``schema``: whether the jobs schema exists, if the caller knows. ``marks``: a
    :class:`~warehouse.query.catalog.QueryState` already read in this transaction (its
    watermarks and pending count), saving a statement."""
    if agg not in ROLLUP_AGGREGATES or not series_ids:
        return None
    tier = next(((t, w) for t, w in TIERS if every_us % w == 0), None)
    if tier is None or not (backend.jobs_schema_present(conn) if schema is None else schema):
        return None
    table, width = tier
    if marks is not None:
        hi, pending = marks.watermarks.get(table), marks.pending
    else:
        watermark, pending = conn.execute(text(
            "SELECT watermark, (SELECT count(*) FROM rollup_invalidations) AS pending "
            "FROM rollup_watermarks WHERE rollup = :r"), {"r": table}).one()
        hi = None if watermark is None else ts_to_us(watermark)
    if hi is None:
        return None
    if end_us is not None:
        hi = min(hi, int(floor_to_bucket(end_us, width)))
    lo = None if start_us is None else -int(floor_to_bucket(-start_us, width))  # ceil
    if lo is not None and hi <= lo:
        return None
    plan = TierPlan(table, width, lo, hi)
    plan.stale = _stale_ranges(conn, series_ids, width, lo, hi) if pending else []
    if start_us is not None and start_us < lo:
        plan.raw.append((start_us, lo))
    if end_us is None or hi < end_us:
        plan.raw.append((hi, end_us))
    return plan


def _stale_ranges(conn: Connection, series_ids: list[int], width: int, lo: int | None,
                  hi: int) -> list[tuple[int, int, list[int]]]:
    ids = ",".join(str(int(s)) for s in series_ids)  # integers from the series table
    params = {"hi": us_to_ts(hi)}
    since = ""
    if lo is not None:
        since, params["lo"] = " AND range_end > :lo", us_to_ts(lo)
    rows = conn.execute(text(
        f"SELECT series_id, range_start, range_end FROM rollup_invalidations "
        f"WHERE series_id IN ({ids}) AND range_start < :hi{since}"), params).fetchall()
    per_series: dict[int, list[tuple[int, int]]] = {}
    for sid, start, end in rows:
        a = int(floor_to_bucket(ts_to_us(start), width))
        b = -int(floor_to_bucket(-ts_to_us(end), width))  # widened to whole tier buckets
        a, b = max(a, lo) if lo is not None else a, min(b, hi)
        if a < b:
            per_series.setdefault(int(sid), []).append((a, b))
    terms: dict[tuple[int, int], list[int]] = {}
    for sid, spans in per_series.items():
        for span in _merge(spans):
            terms.setdefault(span, []).append(sid)
    if len(terms) > MAX_STALE_TERMS:
        # Coarsen: every stale series over the merged time spans, then fewer, wider spans.
        everyone = sorted(per_series)
        spans = _merge([s for spans in per_series.values() for s in spans])
        while len(spans) > MAX_STALE_TERMS:
            gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
            i = gaps.index(min(gaps))
            spans[i:i + 2] = [(spans[i][0], spans[i + 1][1])]
        terms = {span: everyone for span in spans}
    return [(a, b, sids) for (a, b), sids in sorted(terms.items())]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


# A tier row as the partial aggregate of its bucket, and raw points as the same partials per
# series and output bucket: value (and n for mean; ts for first/last, which order by it).
_TIER_PARTIALS = {
    "mean": "sum AS value, CAST(count AS DOUBLE PRECISION) AS n", "sum": "sum AS value",
    "count": "count AS value", "min": "min AS value", "max": "max AS value",
    "first": "first_ts AS ts, first_value AS value", "last": "last_ts AS ts, last_value AS value",
}
_RAW_PARTIALS = {
    "mean": "sum(value) AS value, CAST(count(value) AS DOUBLE PRECISION) AS n",
    "sum": "sum(value) AS value", "count": "count(value) AS value",
    "min": "min(value) AS value", "max": "max(value) AS value",
    "first": "min(ts) AS ts, {aggregate} AS value", "last": "max(ts) AS ts, {aggregate} AS value",
}
_MERGES = {"mean": "sum(value) / sum(n)", "sum": "sum(value)", "count": "sum(value)"}
# A tier row's own answer, when its bucket is the output bucket.
_TIER_VALUES = {
    "first": "first_value", "last": "last_value", "min": "min", "max": "max", "sum": "sum",
    "count": "count", "mean": "sum / count",
}

def read_tier(conn: Connection, backend: Backend, plan: TierPlan, agg: str, every_us: int,
              series_ids: list[int], group: str, join: str, *,
              compressed: bool = False) -> dict[str, np.ndarray]:
    """The rollup answer for the plan as columns bucket_us, grp, value (ordered by grp and
    bucket), fetched in bulk and sorted here rather than in SQL (a sort of 30 days x 40
    series was half of DuckDB's statement). Where points leave the engine by binary COPY
    (PostgreSQL), the rows are shaped as points (bucket start as ts, group as series_id) for
    ``fetch_points``, which decodes them with NumPy: no Python object per row, as
    ``fetch_columns`` makes there. Elsewhere ``fetch_columns`` already hands over columns
    (DuckDB: NumPy)."""
    rows, params = _bucket_rows(plan, backend, agg, every_us, series_ids, group, join,
                                compressed)
    if backend.capabilities.binary_copy:
        table = backend.fetch_points(
            conn, f"SELECT bucket AS ts, CAST(grp AS INTEGER) AS series_id, value, "
                  f"CAST(NULL AS UUID) AS run_id FROM ({rows}) AS buckets", params)
        columns = {"bucket": table.column("ts").to_numpy(), "grp": table.column("series_id"),
                   "value": table.column("value")}
    else:
        columns = backend.fetch_columns(conn, rows, params)
    bucket_us = pd.to_datetime(columns["bucket"], utc=True).as_unit("us").asi8
    grp = np.asarray(columns["grp"], dtype="i8")
    order = np.lexsort((bucket_us, grp))
    return {"bucket_us": bucket_us[order], "grp": grp[order],
            "value": np.asarray(columns["value"], dtype="f8")[order]}


def _bucket_rows(plan: TierPlan, backend: Backend, agg: str, every_us: int,
                 series_ids: list[int], group: str, join: str,
                 compressed: bool) -> tuple[str, dict]:
    """SELECT bucket (timestamptz), grp, value: one row per group and output bucket, unordered
    (tier rows as they are, or partials merged: see the module docstring)."""
    ids = ",".join(str(int(s)) for s in series_ids)
    listed = f"series_id IN ({ids})"
    tier_where, raw, params = _sources(plan, series_ids, listed, listed, compressed)
    raw_bucket = sql_fragment(backend.sql_folders, "query/tier_bucket").format(column="ts", every=every_us)

    if every_us == plan.width_us and not join:
        parts = [f"SELECT bucket, series_id AS grp, "
                 f"CAST({_TIER_VALUES[agg]} AS DOUBLE PRECISION) AS value "
                 f"FROM {plan.table} WHERE {tier_where}"]
        if raw:
            parts.append(f"SELECT {raw_bucket} AS bucket, series_id AS grp, "
                         f"CAST({backend.aggregate(agg)} AS DOUBLE PRECISION) AS value "
                         f"FROM ({raw}) AS points GROUP BY 1, 2")
        return " UNION ALL ".join(parts), params

    tier_bucket = ("bucket" if every_us == plan.width_us else
                   sql_fragment(backend.sql_folders, "query/tier_bucket").format(column="bucket",
                                                                  every=every_us))
    parts = [f"SELECT series_id, {tier_bucket} AS bucket, {_TIER_PARTIALS[agg]} "
             f"FROM {plan.table} WHERE {tier_where}"]
    if raw:
        partials = _RAW_PARTIALS[agg].format(aggregate=backend.aggregate(agg))
        parts.append(f"SELECT series_id, {raw_bucket} AS bucket, {partials} "
                     f"FROM ({raw}) AS points GROUP BY 1, 2")
    merge = _MERGES.get(agg) or backend.aggregate(agg)
    # Grouped by grp first: a sorted aggregate then already yields the order asked for.
    return (f"SELECT bucket, {group} AS grp, CAST({merge} AS DOUBLE PRECISION) AS value "
            f"FROM ({' UNION ALL '.join(parts)}) AS points {join} GROUP BY 2, 1"), params


def tier_partials(conn: Connection, backend: Backend, plan: TierPlan, agg: str,
                  every_us: int, series_ids: list[int], series: str, *,
                  compressed: bool = False) -> dict[str, np.ndarray]:
    """For ``wh.frame``: partial aggregates per (output bucket, series) as columns ``t`` (µs
    bucket start), ``series_id``, ``p`` (and ``n`` for a mean), the rows
    :func:`~warehouse.query.partials.merge_partials` merges, from the plan's tier rows and
    raw points (the same split as :func:`read_tier`: each tier bucket from one side only).
    ``series``: the frame's SQL condition choosing the series (ranges for long runs of ids),
    used in the tier; raw points are chosen as the engine's ``query/series_filter.sql``
    says. A (bucket, series) may come in several rows; the merge adds them up."""
    raw_series = series_filter(backend, series_ids)
    tier_where, raw, params = _sources(plan, series_ids, series, raw_series, compressed,
                                       one_scan=True)
    bucket = sql_fragment(backend.sql_folders, "query/tier_bucket")
    tier_bucket = ("bucket" if every_us == plan.width_us
                   else bucket.format(column="bucket", every=every_us))
    parts = [f"SELECT {tier_bucket} AS bucket, series_id, {_TIER_FRAME_PARTIALS[agg]} "
             f"FROM {plan.table} WHERE {tier_where}"]
    if raw:
        parts.append(f"SELECT {bucket.format(column='ts', every=every_us)} AS bucket, "
                     f"series_id, {PARTIALS[agg]} FROM ({raw}) AS points "
                     f"GROUP BY 1, 2")
    rows = " UNION ALL ".join(parts)
    t = sql_fragment(backend.sql_folders, "query/tier_bucket_us").format(column="bucket")
    if every_us == plan.width_us:
        # A tier row is already one (bucket, series): fetched as it is.
        columns = "p, n" if agg == "mean" else "p"
        sql = f"SELECT {t} AS t, series_id, {columns} FROM ({rows}) AS partials"
    else:
        # Several tier buckets make an output bucket: merged per series in the engine, so
        # a month of daily buckets from the hourly tier leaves it as 30, not 720, rows.
        sql = (f"SELECT {t} AS t, series_id, {_FRAME_MERGES[agg]} FROM ({rows}) AS partials "
               f"GROUP BY bucket, series_id")
    names = ["t", "series_id", "p", "n"] if agg == "mean" else ["t", "series_id", "p"]
    return backend.fetch_number_columns(conn, sql, params, names)


# A tier row as wh.frame's partials (``p``, and ``n`` for mean): raw points give PARTIALS.
_TIER_FRAME_PARTIALS = {
    "max": "max AS p", "min": "min AS p", "sum": "sum AS p",
    "count": "CAST(count AS DOUBLE PRECISION) AS p",
    "mean": "sum AS p, CAST(count AS DOUBLE PRECISION) AS n",
}
_FRAME_MERGES = {
    "max": "max(p) AS p", "min": "min(p) AS p", "sum": "sum(p) AS p", "count": "sum(p) AS p",
    "mean": "sum(p) AS p, sum(n) AS n",
}


def _sources(plan: TierPlan, series_ids: list[int], tier_series: str, raw_series: str,
             compressed: bool, *, one_scan: bool = False) -> tuple[str, str, dict]:
    """The plan's two sides: the condition on tier rows (its buckets minus the stale ones)
    and a SELECT series_id, ts, value of the raw points that answer the rest ('' if none),
    with their parameters. ``tier_series`` and ``raw_series``: SQL conditions choosing the
    plan's series in the tier and among raw points. ``one_scan``: the raw parts as one
    SELECT whose condition ORs them (a raw scan, not one per part, where the points are not
    ordered by time), else a UNION ALL of one SELECT per part."""
    spans = list(plan.raw) + [(a, b) for a, b, _ in plan.stale]
    starts, ends = [a for a, _ in spans], [b for _, b in spans]
    raw_source, params = points_relation(
        [], series_ids, compressed=compressed,
        start=None if None in starts or not starts else us_to_ts(min(starts)),
        end=None if None in ends or not ends else us_to_ts(max(ends)), spans_us=spans)
    params["t_hi"] = us_to_ts(plan.hi)
    where = [tier_series, "bucket < :t_hi"]
    if plan.lo is not None:
        where.append("bucket >= :t_lo")
        params["t_lo"] = us_to_ts(plan.lo)
    for i, (a, b, sids) in enumerate(plan.stale):
        where.append(f"NOT (series_id IN ({','.join(map(str, sids))}) "
                     f"AND bucket >= :s{i}_lo AND bucket < :s{i}_hi)")
        params[f"s{i}_lo"], params[f"s{i}_hi"] = us_to_ts(a), us_to_ts(b)
    raw_rows = []
    for i, (a, b) in enumerate(plan.raw):
        condition = [raw_series]
        if a is not None:
            condition.append(f"ts >= :r{i}_lo")
            params[f"r{i}_lo"] = us_to_ts(a)
        if b is not None:
            condition.append(f"ts < :r{i}_hi")
            params[f"r{i}_hi"] = us_to_ts(b)
        raw_rows.append(" AND ".join(condition))
    for i, (_a, _b, sids) in enumerate(plan.stale):
        raw_rows.append(f"series_id IN ({','.join(map(str, sids))}) "
                        f"AND ts >= :s{i}_lo AND ts < :s{i}_hi")
    if one_scan and raw_rows:
        either = " OR ".join(f"({c})" for c in raw_rows)
        return " AND ".join(where), (f"SELECT series_id, ts, value FROM {raw_source} "
                                     f"WHERE {either}"), params
    raw = " UNION ALL ".join(f"SELECT series_id, ts, value FROM {raw_source} WHERE {c}"
                             for c in raw_rows)
    return " AND ".join(where), raw, params


def raw_overlaps(plan: TierPlan, ranges: list[tuple[int, int]]) -> bool:
    """Whether any raw part of the plan reads time that lies in one of ``ranges``."""
    spans = list(plan.raw) + [(a, b) for a, b, _ in plan.stale]
    for a, b in spans:
        for lo, hi in ranges:
            if (a is None or a < hi) and (b is None or lo < b):
                return True
    return False


__all__ = ["TierPlan", "plan_tier", "raw_overlaps", "read_tier", "tier_partials"]
