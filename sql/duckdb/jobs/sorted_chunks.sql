-- Job compress (DuckDB): chunk ranges sorted so far and their row counts then.
-- Columns: chunk_start, rows.
SELECT chunk_start, rows FROM sorted_chunks
