-- Job refresh_rollups: one step of the incremental rollup refresh (points_1m, points_1h,
-- points_1d). The body is the function wh_refresh_rollups (sql/postgresql/migrations/
-- 0003_jobs.up.sql) so that pg_cron can run the same code.
-- Parameters: :now (complete buckets end at or before it), :max_us (how far points_1m may
-- advance in this transaction; NULL = all the way).
-- Result: one row (rows_written, caught_up); the runner calls again until caught_up.
SELECT rows_written, caught_up
  FROM wh_refresh_rollups(CAST(:now AS timestamptz), CAST(:max_us AS bigint))
