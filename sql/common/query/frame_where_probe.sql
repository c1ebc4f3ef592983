-- wh.frame where= without buckets, no compressed segment in the range: wide rows (t, grp,
-- v0..vN) in (grp, t) order. Every engine's statement for a frame of few series, and for
-- every frame on engines without a query/frame_where_many.sql (query/frame_where.py), unless
-- the engine has a frame_where_probe.sql of its own (PostgreSQL: one probe per hit; this
-- one there only for a group holding two series of one metric).
-- The hits are found first (materialised, so the planner cannot turn it round), then the
-- readings at them: LATERAL makes PostgreSQL probe the primary key once per (hit, series of
-- its group); DuckDB decorrelates it into a hash join on (series_id, ts) whose build side
-- is small, so its scan of the range gets the hits' time bounds and series as filters and
-- skips row groups (a frame with no hit reads nothing more). {probe_series} is the engine's
-- query/frame_probe_series.sql. Measured against this, same process, TSBS high-cpu-1 (10
-- series of 1,000, 0-556 hits): reading the frame's readings once and finding the hits
-- among them cost DuckDB 1.4-2.3x the CPU (the scan skips nothing), and long rows joined on
-- (group, ts) 1.6-2x; on PostgreSQL a hash join of the whole range was slower (TSBS
-- high-cpu-all 1.1 -> 1.6 s, nested loops off, 64 MB work_mem), and long rows would be ten
-- times the Python tuples from the driver.
-- Placeholders: {source} {mapping} {pairs} {columns} {probe} {probe_bounds} {probe_series}
-- {hit_where} {op}.
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
                       {probe_series}
       ) AS points ON true
 GROUP BY 1, 2
 ORDER BY grp, t
