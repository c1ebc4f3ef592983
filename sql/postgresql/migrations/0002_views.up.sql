-- 0002: the analyst views as they were first created (docs/views.md). Frozen: a later
-- change to a view is a new migration carrying its own SQL.

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
GROUP BY recipe, CAST((started_at AT TIME ZONE 'UTC') AS date);

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
GROUP BY r.recipe, s.step;

-- run_timeline: each run's steps with offsets from the run's start (drives a Gantt chart).
-- Columns: run_id, recipe, run_started_at, step_id, parent_step_id, step, ordinal, attempt,
-- status, host, start_offset_ms, end_offset_ms, duration_ms. Order by run_id, ordinal.
CREATE OR REPLACE VIEW run_timeline AS
SELECT r.run_id,
       r.recipe,
       r.started_at AS run_started_at,
       s.step_id,
       s.parent_step_id,
       s.step,
       s.ordinal,
       s.attempt,
       s.status,
       s.host,
       (wh_epoch_us(s.started_at) - wh_epoch_us(r.started_at)) / CAST(1000 AS DOUBLE PRECISION) AS start_offset_ms,
       (wh_epoch_us(s.finished_at) - wh_epoch_us(r.started_at)) / CAST(1000 AS DOUBLE PRECISION) AS end_offset_ms,
       s.duration_us / CAST(1000 AS DOUBLE PRECISION) AS duration_ms
FROM step_runs AS s
JOIN runs AS r ON r.run_id = s.run_id;

-- error_patterns: errors grouped by type and normalised message, where ids (UUIDs),
-- timestamps, hex values, paths and numbers are masked as <id>, <ts>, <hex>, <path>, <n>.
-- Columns: error_type, pattern, occurrences, runs_affected, first_seen, last_seen, recipes,
-- steps (comma-separated, sorted), example (one original message).
CREATE OR REPLACE VIEW error_patterns AS
WITH errors AS (
    SELECT r.recipe, s.step, s.run_id, s.started_at AS seen_at, s.error_type, s.error_message
      FROM step_runs AS s JOIN runs AS r ON r.run_id = s.run_id
     WHERE s.error_message IS NOT NULL OR s.error_type IS NOT NULL
    UNION ALL
    -- run-level errors that no step carries (the failure happened outside any step)
    SELECT r.recipe, NULL, r.run_id, r.started_at, r.error_type, r.error_message
      FROM runs AS r
     WHERE (r.error_message IS NOT NULL OR r.error_type IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM step_runs AS s WHERE s.run_id = r.run_id
                         AND (s.error_message IS NOT NULL OR s.error_type IS NOT NULL))
), masked AS (
    SELECT *, regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(coalesce(error_message, ''), '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'), '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?', '<ts>', 'g'), '0x[0-9a-fA-F]+', '<hex>', 'g'), '(/[A-Za-z0-9._-]+)+/?', '<path>', 'g'), '[0-9]+(\.[0-9]+)?', '<n>', 'g') AS pattern FROM errors
)
SELECT coalesce(error_type, '') AS error_type,
       pattern,
       count(*) AS occurrences,
       count(DISTINCT run_id) AS runs_affected,
       min(seen_at) AS first_seen,
       max(seen_at) AS last_seen,
       string_agg(DISTINCT recipe, ', ' ORDER BY recipe) AS recipes,
       string_agg(DISTINCT step, ', ' ORDER BY step) AS steps,
       min(error_message) AS example
FROM masked
GROUP BY coalesce(error_type, ''), pattern;

-- resource_usage: resource use per recipe and step.
-- Columns: recipe, step, executions, mean_cpu_s, max_cpu_s (user + system CPU time),
-- mean_peak_rss_bytes, max_peak_rss_bytes, total_read_bytes, total_written_bytes,
-- mean_read_bytes, mean_written_bytes.
CREATE OR REPLACE VIEW resource_usage AS
SELECT r.recipe,
       s.step,
       count(*) AS executions,
       CAST(avg(coalesce(s.cpu_user_us, 0) + coalesce(s.cpu_system_us, 0)) AS DOUBLE PRECISION) / CAST(1000000 AS DOUBLE PRECISION) AS mean_cpu_s,
       max(coalesce(s.cpu_user_us, 0) + coalesce(s.cpu_system_us, 0)) / CAST(1000000 AS DOUBLE PRECISION) AS max_cpu_s,
       CAST(avg(s.peak_rss_bytes) AS DOUBLE PRECISION) AS mean_peak_rss_bytes,
       max(s.peak_rss_bytes) AS max_peak_rss_bytes,
       CAST(sum(s.read_bytes) AS DOUBLE PRECISION) AS total_read_bytes,
       CAST(sum(s.written_bytes) AS DOUBLE PRECISION) AS total_written_bytes,
       CAST(avg(s.read_bytes) AS DOUBLE PRECISION) AS mean_read_bytes,
       CAST(avg(s.written_bytes) AS DOUBLE PRECISION) AS mean_written_bytes
FROM step_runs AS s
JOIN runs AS r ON r.run_id = s.run_id
GROUP BY r.recipe, s.step;

-- slow_runs: finished runs slower than the p95 duration of the same recipe's runs that
-- started in the 30 days before them (at least 5 such runs are required).
-- Columns: run_id, recipe, started_at, status, duration_ms, trailing_p95_ms,
-- trailing_runs, slowdown (duration / trailing p95).
CREATE OR REPLACE VIEW slow_runs AS
WITH trailing_window AS (
    SELECT r.run_id, r.recipe, r.started_at, r.status, r.duration_us,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY p.duration_us) AS p95_us,
           count(p.duration_us) AS n
    FROM runs AS r
    JOIN runs AS p
      ON p.recipe = r.recipe
     AND p.started_at >= r.started_at - INTERVAL '30 days'
     AND p.started_at < r.started_at
     AND p.duration_us IS NOT NULL
    WHERE r.duration_us IS NOT NULL
    GROUP BY r.run_id, r.recipe, r.started_at, r.status, r.duration_us
)
SELECT run_id, recipe, started_at, status,
       duration_us / CAST(1000 AS DOUBLE PRECISION) AS duration_ms,
       p95_us / CAST(1000 AS DOUBLE PRECISION) AS trailing_p95_ms,
       n AS trailing_runs,
       duration_us / NULLIF(p95_us, 0) AS slowdown
FROM trailing_window
WHERE n >= 5 AND duration_us > p95_us;

-- series_latest: the last point of every series.
-- Columns: series_id, metric, labels, ts, value.
-- A LATERAL probe per series walks the (series_id, ts) primary key backwards: one index
-- lookup per series rather than a scan of every point.
CREATE OR REPLACE VIEW series_latest AS
SELECT s.series_id, s.metric, s.labels, l.ts, l.value
FROM series AS s
CROSS JOIN LATERAL (
    SELECT p.ts, p.value FROM points AS p
     WHERE p.series_id = s.series_id ORDER BY p.ts DESC LIMIT 1
) AS l;
