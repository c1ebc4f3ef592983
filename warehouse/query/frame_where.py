"""``Warehouse.frame(where=...)`` without buckets: the readings of every metric of a label
set at the instants where one metric passes a value filter (TSBS high-cpu).

Split from :mod:`warehouse.query.frame` because the plan differs by engine and by whether
compressed segments overlap the range; the caller binds ``:where_value`` and the time
bounds, and shapes the rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import Connection

from warehouse.backends.base import Backend
from warehouse.query.archive_read import points_relation, segments_overlap
from warehouse.sqlfiles import sql_fragment


def readings_where(conn: Connection, backend: Backend, source: str, archived: list,
                   mapping: str, pairs: str, columns: list[str], series_ids: list[int],
                   m_codes: np.ndarray, filters: list[str], k: int, op: str,
                   compressed: bool, start_ts, end_ts) -> tuple[str, Callable | None]:
    """The statement giving (t, grp, v0..vN) where metric ``k`` ``op`` ``:where_value``,
    and None; or a statement and a function turning its fetched columns (dict of arrays)
    into those columns sorted by (grp, t) (then the caller adds no ORDER BY).

    ``filters`` are the frame's conditions on ``points`` (series list first, then time
    bounds); ``mapping`` joins ``points`` to (g_series_id, g_grp, g_m) from ``pairs``;
    ``columns`` are the per-metric aggregates over ``g_m``."""
    # Find the (instant, label set) whose filtered metric passes first (materialised,
    # so the planner cannot turn it round), then fetch only the readings there:
    # LATERAL makes PostgreSQL probe the primary key per (hit, series); DuckDB
    # decorrelates it into a hash join on (series_id, ts), whose scan the time bounds
    # repeated inside keep to the range (else it read every point of the table), and
    # the engine's frame_probe_series file to the frame's series where that helps
    # (DuckDB; on PostgreSQL the list made the planner probe every series per hit).
    # Pivoting every reading of the range instead cost 3-10x more (bench/tsbs
    # high-cpu: ten FILTER aggregates over every reading is most of it).
    ids = ",".join(map(str, series_ids)) or "NULL"
    where_sql = " AND ".join(filters)
    hit_ids = ",".join(str(s) for s, m in zip(series_ids, m_codes) if m == k) or "NULL"
    hit_where = " AND ".join([f"series_id IN ({hit_ids})", *filters[1:]])
    hits = (f"WITH h AS MATERIALIZED (SELECT points.ts AS h_ts, g.g_grp AS h_grp "
            f"FROM {source} {mapping} WHERE {hit_where} "
            f"AND points.value {op} :where_value)")
    per_group = (f"SELECT h.h_ts AS t, h.h_grp AS grp, {', '.join(columns)} FROM h "
                 f"JOIN (VALUES {pairs}) AS g(g_series_id, g_grp, g_m) "
                 f"ON g.g_grp = h.h_grp")
    if compressed and segments_overlap(conn, series_ids, start_ts, end_ts):
        # A probe per (hit, series) would decode a whole segment for one reading
        # (TSBS high-cpu-1, 10 hosts compressed: 6 s against 11 ms raw). Decode the
        # range once instead and hash-join its readings with the hits. (Keeping only
        # the readings at hit instants with IN (SELECT h_ts FROM h) first made the
        # planner, which guesses a CTE holds a few rows, loop over hits per reading.)
        return (f"{hits}, r AS MATERIALIZED (SELECT points.ts AS r_ts, "
                f"points.series_id AS r_series_id, points.value FROM {source} "
                f"WHERE {where_sql}) "
                f"{per_group} JOIN r AS points ON points.r_series_id = g.g_series_id "
                f"AND points.r_ts = h.h_ts GROUP BY 1, 2"), None
    # No compressed segment in the range: the probes read hot rows only.
    probe, _ = points_relation(archived, series_ids)
    return (f"{hits} {per_group} "
            f"JOIN LATERAL (SELECT points.value FROM {probe} "
            f"WHERE points.series_id = g.g_series_id AND points.ts = h.h_ts"
            f"{''.join(' AND points.' + f for f in filters[1:])}"
            f"{sql_fragment(backend.sql_folders, 'query/frame_probe_series').format(ids=ids)}"
            f") AS points ON true GROUP BY 1, 2"), None


__all__ = ["readings_where"]
