-- Upsert a staged batch into step_runs.
-- Expects a relation _stage_step_runs with the table's columns; UUIDs and JSON as text.
-- A row in a terminal status (succeeded, failed, cancelled) is never turned back into
-- 'running' by a late or replayed heartbeat; replaying the same batch changes nothing.
INSERT INTO step_runs (run_id, step_id, parent_step_id, step, ordinal, attempt, started_at, finished_at, duration_us, status, error_type, error_message, host, depends_on, attributes, cpu_user_us, cpu_system_us, peak_rss_bytes, read_bytes, written_bytes)
SELECT CAST(run_id AS UUID),
       step_id,
       parent_step_id,
       step,
       ordinal,
       attempt,
       started_at,
       finished_at,
       duration_us,
       status,
       error_type,
       error_message,
       host,
       CAST(depends_on AS JSON),
       CAST(attributes AS JSON),
       cpu_user_us,
       cpu_system_us,
       peak_rss_bytes,
       read_bytes,
       written_bytes
FROM _stage_step_runs
ON CONFLICT (run_id, step_id) DO UPDATE SET
    parent_step_id = excluded.parent_step_id,
    step = excluded.step,
    ordinal = excluded.ordinal,
    attempt = excluded.attempt,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    duration_us = excluded.duration_us,
    status = excluded.status,
    error_type = excluded.error_type,
    error_message = excluded.error_message,
    host = excluded.host,
    depends_on = excluded.depends_on,
    attributes = excluded.attributes,
    cpu_user_us = excluded.cpu_user_us,
    cpu_system_us = excluded.cpu_system_us,
    peak_rss_bytes = excluded.peak_rss_bytes,
    read_bytes = excluded.read_bytes,
    written_bytes = excluded.written_bytes
WHERE step_runs.status = 'running' OR excluded.status <> 'running'
