-- Job archive: the rows of one unit of points, [:start, :end) for all metrics (:metric '*')
-- or one. Columns: ts, series_id, value, run_id (the backend streams them out in bulk; the
-- job sorts them by series_id, ts before writing Parquet).
SELECT ts, series_id, value, run_id FROM points
 WHERE ts >= :start AND ts < :end
   AND (:metric = '*' OR series_id IN (SELECT series_id FROM series WHERE metric = :metric))
