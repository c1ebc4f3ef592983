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
GROUP BY coalesce(error_type, ''), pattern
