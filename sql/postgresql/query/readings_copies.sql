-- wh.frame on PostgreSQL: what the pivoted copy (migration 0017) holds, in one round trip
-- (warehouse/query/frame_readings.py remembers it): kind 'c', the copied chunk ranges as µs
-- (a, b) and their copy_no (n); 'm', the column number (a) of each metric that has one;
-- 'e', the entity (b) of each series (a) whose label set has one.
SELECT 'c' AS kind, round(date_part('epoch', chunk_start) * 1000000)::bigint AS a,
       round(date_part('epoch', chunk_end) * 1000000)::bigint AS b, copy_no AS n,
       NULL::text AS metric
  FROM reading_chunks
 WHERE copied
UNION ALL
SELECT 'm', col, NULL, NULL, metric FROM reading_columns
UNION ALL
SELECT 'e', s.series_id, e.entity, NULL, NULL
  FROM series s JOIN reading_entities e ON e.labels_key = s.labels_key
