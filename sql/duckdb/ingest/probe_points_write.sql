-- Ingest, inside the transaction that writes points in [:lo, :hi]: in one round trip, the
-- archive units the batch touches (kind 'unit') and the points_1m watermark (kind
-- 'watermark'; NULL: never refreshed). The two reads of jobs/lock_manifest_for_write.sql and
-- jobs/fence_points_write.sql, whose headers explain why DuckDB needs no row locks.
SELECT 'unit' AS kind, chunk_start, chunk_end, metric, dropped_at,
       CAST(NULL AS TIMESTAMPTZ) AS watermark
  FROM archive_manifest
 WHERE table_name = 'points' AND chunk_start <= :hi AND chunk_end > :lo
UNION ALL
SELECT 'watermark', NULL, NULL, NULL, NULL, watermark
  FROM rollup_watermarks WHERE rollup = 'points_1m'
