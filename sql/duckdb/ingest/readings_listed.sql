-- A wide write (Warehouse.write_frame) into [:lo, :hi]: what the pivoted copy needs to
-- know, in one statement (warehouse/backends/duckdb_readings.py), as (kind, a, b, flag):
--   ('i', points' chunk interval µs, NULL, NULL);
--   ('r', start µs, end µs, copied) per range listed in reading_chunks overlapping it;
--   ('c', NULL, col, NULL) per metric column of readings, with its metric as text in
--     `name`; ('h', NULL, NULL, NULL) per column readings has, named in `name`.
SELECT 'i' AS kind, chunk_interval_us AS a, NULL::BIGINT AS b, NULL::BOOLEAN AS flag,
       NULL::VARCHAR AS name
  FROM hypertables WHERE table_name = 'points'
UNION ALL
SELECT 'r', epoch_us(chunk_start), epoch_us(chunk_end), copied, NULL FROM reading_chunks
 WHERE chunk_end > :lo AND chunk_start <= :hi
UNION ALL
SELECT 'c', NULL, col, NULL, metric FROM reading_columns
UNION ALL
SELECT 'h', NULL, NULL, NULL, column_name FROM duckdb_columns() WHERE table_name = 'readings'
