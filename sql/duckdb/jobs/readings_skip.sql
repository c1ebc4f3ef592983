-- Job compress, DuckDB: a chunk range [start, end) left without a pivoted copy (its metrics
-- would take the copy past its column limit): any old copy goes, and the range is marked so
-- the job does not try again until a write changes it. Frames over it read points.
-- Variables set by the runner: start, end, now. Result: 0 rows copied.
DELETE FROM readings WHERE ts >= getvariable('start') AND ts < getvariable('end');
-- Copies of other ranges overlapping this one (made before the chunk interval changed)
-- lost rows to the DELETE above: they are no longer complete.
DELETE FROM reading_chunks
 WHERE chunk_start < getvariable('end') AND chunk_end > getvariable('start');
INSERT OR REPLACE INTO reading_chunks (chunk_start, chunk_end, copied, copied_at, copy_no)
VALUES (getvariable('start'), getvariable('end'), false, getvariable('now'),
        nextval('reading_copy_seq'));
DROP TABLE IF EXISTS _wh_range_series;
SELECT 0;
