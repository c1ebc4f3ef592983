-- Ingest, inside the transaction that writes points in [:lo, :hi]: the archive units the
-- batch touches, held FOR SHARE until commit so that retention (which takes them FOR UPDATE
-- before counting and dropping) either counts these points or has already marked the unit
-- dropped, which ingest then refuses. Result: chunk_start, chunk_end, metric, dropped_at.
SELECT chunk_start, chunk_end, metric, dropped_at
  FROM archive_manifest
 WHERE table_name = 'points' AND chunk_start <= :hi AND chunk_end > :lo
   FOR SHARE
