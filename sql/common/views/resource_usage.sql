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
GROUP BY r.recipe, s.step
