"""Reading rollups for ``Warehouse.points``: which tier answers a bucketed query, and the SQL
that merges materialised buckets with raw points so the answer equals raw aggregation.

A query ``every=E, agg=A`` over [start, end) can use tier T (width W) when A is one of
:data:`~warehouse.model.ROLLUP_AGGREGATES` and E is a multiple of W: every output
bucket is then a union of whole tier buckets. The coarsest such tier is used. Its rows
answer the aligned part [ceil_W(start), min(floor_W(end), watermark)), minus the tier
buckets overlapping pending invalidations; raw points answer the rest (the unaligned
edges, the not yet materialised tail, the stale buckets). Both sides are turned into
partial aggregates per row and merged per output bucket; since each tier bucket comes from
exactly one side, nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from warehouse.backends.base import Backend, floor_to_bucket
from warehouse.model import ROLLUP_AGGREGATES, TIERS
from warehouse.query.archive_read import points_relation
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


# What each side contributes per row, by aggregate: (ts column, value column, weight column).
# ts only places the row in its output bucket (and orders first/last).
_ROLLUP_PARTS = {
    "first": ("first_ts", "first_value", None), "last": ("last_ts", "last_value", None),
    "min": ("bucket", "min", None), "max": ("bucket", "max", None),
    "sum": ("bucket", "sum", None), "count": ("bucket", "count", None),
    "mean": ("bucket", "sum", "count"),
}


def tier_sql(plan: TierPlan, backend: Backend, agg: str, every_us: int, series_ids: list[int],
             group: str, join: str, *, compressed: bool = False) -> tuple[str, dict]:
    """SELECT bucket_us, grp, value for the plan: partials from both sides, merged.
    ``compressed``: raw parts also read compressed segments (archive_read.points_relation)."""
    ids = ",".join(str(int(s)) for s in series_ids)
    spans = list(plan.raw) + [(a, b) for a, b, _ in plan.stale]
    starts, ends = [a for a, _ in spans], [b for _, b in spans]
    raw_source, params = points_relation(
        [], series_ids, compressed=compressed,
        start=None if None in starts or not starts else us_to_ts(min(starts)),
        end=None if None in ends or not ends else us_to_ts(max(ends)))
    params["t_hi"] = us_to_ts(plan.hi)
    ts_col, value_col, weight_col = _ROLLUP_PARTS[agg]
    weight = f", CAST({weight_col} AS DOUBLE PRECISION) AS n" if weight_col else ""
    where = [f"series_id IN ({ids})", "bucket < :t_hi"]
    if plan.lo is not None:
        where.append("bucket >= :t_lo")
        params["t_lo"] = us_to_ts(plan.lo)
    for i, (a, b, sids) in enumerate(plan.stale):
        where.append(f"NOT (series_id IN ({','.join(map(str, sids))}) "
                     f"AND bucket >= :s{i}_lo AND bucket < :s{i}_hi)")
        params[f"s{i}_lo"], params[f"s{i}_hi"] = us_to_ts(a), us_to_ts(b)
    parts = [f"SELECT series_id, {ts_col} AS ts, CAST({value_col} AS DOUBLE PRECISION) AS value"
             f"{weight} FROM {plan.table} WHERE {' AND '.join(where)}"]

    raw_value = "CAST(1 AS DOUBLE PRECISION)" if agg == "count" else "value"
    raw_weight = ", CAST(1 AS DOUBLE PRECISION) AS n" if weight_col else ""

    def raw_part(condition: str) -> str:
        return (f"SELECT series_id, ts, {raw_value} AS value{raw_weight} FROM {raw_source} "
                f"WHERE {condition}")

    for i, (a, b) in enumerate(plan.raw):
        condition = [f"series_id IN ({ids})"]
        if a is not None:
            condition.append(f"ts >= :r{i}_lo")
            params[f"r{i}_lo"] = us_to_ts(a)
        if b is not None:
            condition.append(f"ts < :r{i}_hi")
            params[f"r{i}_hi"] = us_to_ts(b)
        parts.append(raw_part(" AND ".join(condition)))
    for i, (_a, _b, sids) in enumerate(plan.stale):
        parts.append(raw_part(f"series_id IN ({','.join(map(str, sids))}) "
                              f"AND ts >= :s{i}_lo AND ts < :s{i}_hi"))

    merge = {"count": "sum(value)",
             "mean": "sum(value) / sum(n)"}.get(agg) or backend.aggregate(agg)
    sql = (f"SELECT {backend.bucket_start('ts', every_us)} AS bucket_us, {group} AS grp, "
           f"{merge} AS value FROM ({' UNION ALL '.join(parts)}) AS points {join} "
           f"GROUP BY {backend.bucket_key('ts', every_us)}, 2 ORDER BY 2, 1")
    return sql, params


def raw_overlaps(plan: TierPlan, ranges: list[tuple[int, int]]) -> bool:
    """Whether any raw part of the plan reads time that lies in one of ``ranges``."""
    spans = list(plan.raw) + [(a, b) for a, b, _ in plan.stale]
    for a, b in spans:
        for lo, hi in ranges:
            if (a is None or a < hi) and (b is None or lo < b):
                return True
    return False


__all__ = ["TierPlan", "plan_tier", "raw_overlaps", "tier_sql"]
