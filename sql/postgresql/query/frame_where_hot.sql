-- wh.frame where= without buckets, a frame of many series (frame_where_few.sql otherwise), no
-- compressed segment in the range: wide rows (t, grp, v0..vN) in (grp, t) order. The hits are
-- found first (materialised, so the planner cannot turn it round), then LATERAL probes the
-- primary key once per (hit, series of its group).
-- Long rows pivoted in NumPy (DuckDB's file) would be ten times the rows through the driver,
-- each a Python tuple here. A hash join of the range with the hits instead of the probes, with
-- nested loops off and 64 MB of work_mem, was slower (TSBS high-cpu-all 1.1 -> 1.6 s); the
-- series list inside the probe made the planner probe every series per hit (5-50x slower).
-- Placeholders: {source} {mapping} {pairs} {columns} {probe} {probe_bounds} {hit_where} {op}.
WITH h AS MATERIALIZED (
    SELECT points.ts AS h_ts, g.g_grp AS h_grp
      FROM {source} {mapping}
     WHERE {hit_where} AND points.value {op} :where_value
)
SELECT h.h_ts AS t, h.h_grp AS grp, {columns}
  FROM h
  JOIN (VALUES {pairs}) AS g(g_series_id, g_grp, g_m) ON g.g_grp = h.h_grp
  JOIN LATERAL (SELECT points.value FROM {probe}
                 WHERE points.series_id = g.g_series_id AND points.ts = h.h_ts{probe_bounds}
       ) AS points ON true
 GROUP BY 1, 2
 ORDER BY grp, t
