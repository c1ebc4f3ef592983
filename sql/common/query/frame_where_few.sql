-- wh.frame where= without buckets, a frame of few series (query/frame_where.py says how few),
-- no compressed segment in the range: wide rows (t, grp, v0..vN) in (grp, t) order.
-- The frame's readings in the range are read once (r: few series, so few rows), the hits
-- found among them, and the readings at the hits pivoted. Reading the range once instead of
-- twice (hits, then readings) is most of a small frame's statement on DuckDB, whose scan
-- reads every point of the range to keep a few series (TSBS high-cpu-1, 10 series of 1,000:
-- CPU 55 -> 34 ms, load 4.0); on PostgreSQL it is as fast as a probe per reading (36 / 37 ms).
-- For many series r would hold the whole range (TSBS high-cpu-all: 4.3 M rows; DuckDB CPU
-- 252 -> 348 ms): frame_where_hot.sql then.
-- Placeholders: {source} {mapping} {columns} {where} {hit_ids} {op}.
WITH r AS MATERIALIZED (
    SELECT points.ts, points.series_id, points.value, g.g_grp, g.g_m
      FROM {source} {mapping}
     WHERE {where}
), h AS MATERIALIZED (
    SELECT DISTINCT r.ts AS h_ts, r.g_grp AS h_grp
      FROM r
     WHERE r.series_id IN ({hit_ids}) AND r.value {op} :where_value
)
SELECT h.h_ts AS t, h.h_grp AS grp, {columns}
  FROM r
  JOIN h ON h.h_grp = r.g_grp AND h.h_ts = r.ts
 GROUP BY 1, 2
 ORDER BY grp, t
