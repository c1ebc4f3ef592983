-- Job compress, DuckDB: list a chunk range [start, end) in reading_chunks after
-- jobs/readings_copy.sql (copied = true) or jobs/readings_skip.sql (false) rewrote its rows
-- of `readings`, with a new copy_no. Copies of other ranges overlapping this one (made
-- before the chunk interval changed) lost rows to that rewrite: they are no longer complete.
-- Variables set by the runner: start, end, now, copied. Result: 1.
DELETE FROM reading_chunks
 WHERE chunk_start < getvariable('end') AND chunk_end > getvariable('start');
INSERT OR REPLACE INTO reading_chunks (chunk_start, chunk_end, copied, copied_at, copy_no)
VALUES (getvariable('start'), getvariable('end'), getvariable('copied'), getvariable('now'),
        nextval('reading_copy_seq'));
SELECT 1;
