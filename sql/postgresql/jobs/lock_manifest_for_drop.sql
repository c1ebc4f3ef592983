-- drop_chunks, before judging which chunks may go (after jobs/lock_chunks): the manifest
-- rows of :table FOR UPDATE, so ingest (which holds the rows of the units it writes into
-- FOR SHARE) either commits before the chunks are counted, or waits and then sees the unit
-- dropped and refuses. Result: chunk_start, metric.
SELECT chunk_start, metric FROM archive_manifest WHERE table_name = :table FOR UPDATE
