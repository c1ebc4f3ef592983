-- recipe_daily_stats: one row per recipe and UTC day of run start.
-- Columns: recipe, day, runs, succeeded, failed, cancelled, running, success_rate (succeeded /
-- finished runs), mean_duration_ms, p50_duration_ms, p95_duration_ms, p99_duration_ms
-- (continuous percentiles over finished runs).
CREATE OR REPLACE VIEW recipe_daily_stats AS
SELECT recipe,
       CAST((started_at AT TIME ZONE 'UTC') AS date) AS day,
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE status = 'running') AS running,
       CAST(count(*) FILTER (WHERE status = 'succeeded') AS DOUBLE PRECISION)
           / NULLIF(count(*) FILTER (WHERE status <> 'running'), 0) AS success_rate,
       CAST(avg(duration_us) AS DOUBLE PRECISION) / CAST(1000 AS DOUBLE PRECISION) AS mean_duration_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_us) / CAST(1000 AS DOUBLE PRECISION) AS p50_duration_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_us) / CAST(1000 AS DOUBLE PRECISION) AS p95_duration_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) / CAST(1000 AS DOUBLE PRECISION) AS p99_duration_ms
FROM runs
GROUP BY recipe, CAST((started_at AT TIME ZONE 'UTC') AS date)
