-- Compressed rows per chunk of points (chunks without segments are left out).
-- Columns: chunk_name, rows.
SELECT c.chunk_name, sum(s.n) AS rows
  FROM wh_chunks c
  JOIN points_compressed s ON s.ts_min >= c.range_start AND s.ts_min < c.range_end
 WHERE c.hypertable = 'points'
 GROUP BY c.chunk_name
