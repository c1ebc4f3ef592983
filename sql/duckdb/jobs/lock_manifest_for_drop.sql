-- drop_chunks, before judging which chunks may go: the manifest rows of :table. DuckDB has
-- one writer process and the caller holds its write fence, so no row lock is needed.
-- Result: chunk_start, metric.
SELECT chunk_start, metric FROM archive_manifest WHERE table_name = :table
