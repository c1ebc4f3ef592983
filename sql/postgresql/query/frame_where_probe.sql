-- wh.frame where= without buckets, no compressed segment in the range (PostgreSQL): wide rows
-- (t, grp, v0..vN) in (grp, t) order, as sql/common/query/frame_where_probe.sql gives them.
-- The hits (readings of the filtered metric that pass) are found first, each with its group's
-- series ids, one per metric ({hit_groups}: hit series id, group, ARRAY[id of metric 0, ...],
-- NULL where the group has none); then ONE probe of the primary key per hit (series_id = ANY
-- of those ids at the hit's instant) reads its readings and pivots them by array position
-- ({group_columns}) in its own aggregate. The common statement's LATERAL per (hit, series)
-- rescanned a node per reading and grouped 10 rows per hit in a hash aggregate that spilled
-- past work_mem. TSBS high-cpu-all (100 hosts, 44,866 hits, 448,660 readings; the same 1.8M
-- buffers), same process: 1,840 -> 1,497 ms median at load ~6, ~1,300 -> 948 at load ~2.
-- Tried and slower or fragile: a hash join of the range (1.1 -> 1.6 s); the hits as a
-- subquery, whose plain join to points ran in parallel workers (760 ms by hand) but which the
-- planner also turned into a hash join on ts alone with the series as a join filter (9.4 s);
-- MATERIALIZED and the LATERAL aggregate leave it no such plan. A group has at most one
-- series per metric here (query/frame_where.py checks), so positions are metric codes.
-- Placeholders: {source} {hit_where} {op} {hit_groups} {group_columns} {probe}
-- {probe_bounds} {probe_series}.
WITH h AS MATERIALIZED (
    SELECT points.ts AS h_ts, gs.gs_grp AS h_grp, gs.gs_ids AS h_ids
      FROM {source}
      JOIN (VALUES {hit_groups}) AS gs(gs_series_id, gs_grp, gs_ids)
        ON gs.gs_series_id = points.series_id
     WHERE {hit_where} AND points.value {op} :where_value
)
SELECT h.h_ts AS t, h.h_grp AS grp, r.*
  FROM h
 CROSS JOIN LATERAL (SELECT {group_columns} FROM {probe}
                      WHERE points.series_id = ANY (h.h_ids) AND points.ts = h.h_ts{probe_bounds}
                            {probe_series}
       ) AS r
 ORDER BY grp, t
