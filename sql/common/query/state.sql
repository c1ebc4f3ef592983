-- What a points query must know before its own SQL runs, in one round trip
-- (warehouse/query/catalog.py): the number of series and the newest series id (series are
-- only ever added, so the cached series of a metric are current while both are unchanged;
-- the count catches a series whose id was drawn before the newest one's but committed
-- after it), how many archive units of
-- points have left the hot table, each rollup's watermark and the pending invalidations.
-- One row per fact rather than scalar subqueries: DuckDB plans the UNION ALL form in half
-- the time (0.9 ms against 1.9 ms, bench/query_overhead.py machine).
-- Needs migration 0003 (jobs); state_series.sql is the form for older schemas.
-- Result: rows (k, n, t): ('series_max', n), ('series_count', n), ('archived', n),
-- ('pending', n), and
-- (rollup table name, NULL, watermark) per rollup.
SELECT 'series_max' AS k, CAST(max(series_id) AS BIGINT) AS n,
       CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS t FROM series
UNION ALL
SELECT 'series_count', count(*), NULL FROM series
UNION ALL
SELECT 'archived', count(*), NULL FROM archive_manifest
 WHERE table_name = 'points' AND dropped_at IS NOT NULL
UNION ALL
SELECT rollup, NULL, watermark FROM rollup_watermarks
UNION ALL
SELECT 'pending', count(*), NULL FROM rollup_invalidations
