-- Restore: the unit's rows are hot again; retention leaves it alone until :hold_until.
UPDATE archive_manifest SET dropped_at = NULL, hold_until = :hold_until
 WHERE table_name = :table AND chunk_start = :start AND metric = :metric
   AND dropped_at IS NOT NULL
