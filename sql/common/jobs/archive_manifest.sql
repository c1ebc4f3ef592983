-- The archive manifest, oldest unit first. Columns: see migrations 0003 and 0006
-- (warehouse_id: the warehouse that wrote the file).
SELECT table_name, chunk_name, chunk_start, chunk_end, metric, rows, min_ts, max_ts, bytes,
       sha256, verified, archived_at, verified_at, dropped_at, hold_until, root, path,
       CAST(warehouse_id AS VARCHAR) AS warehouse_id
  FROM archive_manifest
 ORDER BY table_name, chunk_start, metric
