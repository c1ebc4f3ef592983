-- Ingest, inside the transaction that writes points in [:lo, :hi]: the archive units the
-- batch touches (no row lock on DuckDB: retention holds this process's ingest lock).
-- Result: chunk_start, chunk_end, metric, dropped_at.
SELECT chunk_start, chunk_end, metric, dropped_at
  FROM archive_manifest
 WHERE table_name = 'points' AND chunk_start <= :hi AND chunk_end > :lo
