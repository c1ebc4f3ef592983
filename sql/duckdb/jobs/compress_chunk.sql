-- Job compress, one chunk range [start, end) of points (DuckDB script): rewrite its rows
-- sorted by (series_id, ts), in the caller's transaction, and record the count it had.
-- Variables set by the runner: chunk (its name), start, end, now.
-- Result: one row (rows_compressed, segments, refused): rows rewritten, 0, NULL.
CREATE TEMP TABLE _wh_sorted AS
SELECT ts, series_id, value, run_id FROM points
 WHERE ts >= getvariable('start') AND ts < getvariable('end')
 ORDER BY series_id, ts;
DELETE FROM points WHERE ts >= getvariable('start') AND ts < getvariable('end');
INSERT INTO points (ts, series_id, value, run_id) SELECT * FROM _wh_sorted;
INSERT OR REPLACE INTO sorted_chunks (chunk_start, chunk_end, rows, sorted_at)
SELECT getvariable('start'), getvariable('end'), count(*), getvariable('now') FROM _wh_sorted;
DROP TABLE _wh_sorted;
SELECT rows AS rows_compressed, 0 AS segments, NULL AS refused
  FROM sorted_chunks WHERE chunk_start = getvariable('start');
