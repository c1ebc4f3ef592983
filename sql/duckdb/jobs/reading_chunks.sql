-- Job compress (DuckDB): chunk ranges the pivoted copy has been made for (or skipped).
-- Columns: chunk_start.
SELECT chunk_start FROM reading_chunks
