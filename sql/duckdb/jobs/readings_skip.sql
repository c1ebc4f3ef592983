-- Job compress, DuckDB: a chunk range [start, end) left without a pivoted copy (its metrics
-- would take the copy past its column limit): any old copy goes, and the range is marked so
-- the job does not try again until a write changes it. Frames over it read points.
-- Variables set by the runner: start, end; jobs/readings_mark.sql then lists the range.
-- Result: 0 rows copied.
DELETE FROM readings WHERE ts >= getvariable('start') AND ts < getvariable('end');
DROP TABLE IF EXISTS _wh_range_series;
SELECT 0;
