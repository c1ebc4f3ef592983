-- The manifest row of one archive unit (none if never archived).
SELECT table_name, chunk_name, chunk_start, chunk_end, metric, root, path, rows, min_ts,
       max_ts, bytes, sha256, verified, archived_at, verified_at, dropped_at, hold_until,
       CAST(warehouse_id AS VARCHAR) AS warehouse_id
  FROM archive_manifest
 WHERE table_name = :table AND chunk_start = :start AND metric = :metric
