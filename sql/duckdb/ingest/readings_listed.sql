-- A wide write (Warehouse.write_frame) into [:lo, :hi]: the chunk ranges listed in
-- reading_chunks that overlap it, to tell which copies it can extend
-- (warehouse/backends/duckdb_readings.py). Columns: start µs, end µs, copied.
SELECT epoch_us(chunk_start), epoch_us(chunk_end), copied FROM reading_chunks
 WHERE chunk_end > :lo AND chunk_start <= :hi
