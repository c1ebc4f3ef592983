-- Job archive: the rows of one unit of points, [:start, :end) for all metrics (:metric '*')
-- or one: hot rows and the decoded compressed segments of the range (a segment never spans
-- two chunks, so its ts_min places it). Columns: ts, series_id, value, run_id.
SELECT ts, series_id, value, run_id FROM points
 WHERE ts >= :start AND ts < :end
   AND (:metric = '*' OR series_id IN (SELECT series_id FROM series WHERE metric = :metric))
UNION ALL
SELECT s.ts, c.series_id, s.value, s.run_id
  FROM points_compressed c
 CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals, c.vals_real,
                                     c.vals_int, c.vals_decimals, c.run_ids) s
 WHERE c.ts_min >= :start AND c.ts_min < :end
   AND (:metric = '*' OR c.series_id IN (SELECT series_id FROM series WHERE metric = :metric))
