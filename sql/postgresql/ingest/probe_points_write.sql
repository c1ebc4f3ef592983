-- Ingest, inside the transaction that writes points in [:lo, :hi]: in one round trip, the
-- archive units the batch touches (kind 'unit') and the points_1m watermark (kind
-- 'watermark'; NULL: never refreshed), each held FOR SHARE until commit, in the same order
-- as before. The two reads of jobs/lock_manifest_for_write.sql and
-- jobs/fence_points_write.sql, whose headers explain the locks (retention and the rollup
-- refresh take these rows FOR UPDATE).
WITH units AS (
    SELECT chunk_start, chunk_end, metric, dropped_at
      FROM archive_manifest
     WHERE table_name = 'points' AND chunk_start <= :hi AND chunk_end > :lo
       FOR SHARE
), mark AS (
    SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m' FOR SHARE
)
SELECT 'unit' AS kind, chunk_start, chunk_end, metric, dropped_at,
       NULL::timestamptz AS watermark
  FROM units
UNION ALL
SELECT 'watermark', NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz,
       watermark
  FROM mark
