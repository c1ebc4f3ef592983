-- The archive manifest, oldest unit first. Columns: see migration 0003.
SELECT table_name, chunk_name, chunk_start, chunk_end, metric, rows, min_ts, max_ts, bytes,
       sha256, verified, archived_at, verified_at, dropped_at, hold_until, root, path
  FROM archive_manifest
 ORDER BY table_name, chunk_start, metric
