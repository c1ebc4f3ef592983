-- step_stats: one row per recipe and step name.
-- Columns: recipe, step, executions, failed, failure_rate, mean_duration_ms, p50_duration_ms,
-- p95_duration_ms, mean_share_of_run (mean of step duration / its run's duration, finished
-- runs only), retries (executions with attempt > 1).
CREATE OR REPLACE VIEW step_stats AS
SELECT r.recipe,
       s.step,
       count(*) AS executions,
       count(*) FILTER (WHERE s.status = 'failed') AS failed,
       CAST(count(*) FILTER (WHERE s.status = 'failed') AS DOUBLE PRECISION) / count(*) AS failure_rate,
       CAST(avg(s.duration_us) AS DOUBLE PRECISION) / CAST(1000 AS DOUBLE PRECISION) AS mean_duration_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_us) / CAST(1000 AS DOUBLE PRECISION) AS p50_duration_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_us) / CAST(1000 AS DOUBLE PRECISION) AS p95_duration_ms,
       CAST(avg(CAST(s.duration_us AS DOUBLE PRECISION) / NULLIF(r.duration_us, 0)) AS DOUBLE PRECISION) AS mean_share_of_run,
       count(*) FILTER (WHERE s.attempt > 1) AS retries
FROM step_runs AS s
JOIN runs AS r ON r.run_id = s.run_id
GROUP BY r.recipe, s.step
