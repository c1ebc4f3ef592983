-- Before points change in [:lo, :hi] (either may be NULL: unbounded), the chunk ranges of
-- the pivoted copy (migration 0016) that overlap it: their copy is deleted with the change
-- (warehouse/backends/duckdb_write.py forget_readings). Columns: chunk_start, chunk_end.
SELECT chunk_start, chunk_end FROM reading_chunks
 WHERE (CAST(:lo AS TIMESTAMPTZ) IS NULL OR chunk_end > :lo)
   AND (CAST(:hi AS TIMESTAMPTZ) IS NULL OR chunk_start <= :hi)
