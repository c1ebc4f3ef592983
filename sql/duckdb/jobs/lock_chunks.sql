-- drop_chunks: nothing to lock on DuckDB. One process writes the file and the caller holds
-- its write fence, so no chunk appears or goes while the drop is judged.
SELECT CAST(:table AS VARCHAR) AS locked
