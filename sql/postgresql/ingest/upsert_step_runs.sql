-- Upsert a staged batch into step_runs.
-- Expects a temporary table _stage_step_runs created LIKE step_runs, after
-- ingest/move_step_runs.sql. (run_id, step_id) is unique (migration 0005: step_keys).
-- A row in a terminal status (succeeded, failed, cancelled) is never turned back into
-- 'running' by a late or replayed heartbeat; replaying the same batch changes nothing.
INSERT INTO step_runs (run_id, step_id, parent_step_id, step, ordinal, attempt, started_at, finished_at, duration_us, status, error_type, error_message, host, depends_on, attributes, cpu_user_us, cpu_system_us, peak_rss_bytes, read_bytes, written_bytes)
SELECT run_id,
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
       depends_on,
       attributes,
       cpu_user_us,
       cpu_system_us,
       peak_rss_bytes,
       read_bytes,
       written_bytes
FROM _stage_step_runs AS s
-- A step still stored under another start was kept by the terminal-status rule
-- (move_step_runs.sql moved every other one): skip it, as the WHERE below skips such an update.
WHERE NOT EXISTS (SELECT 1 FROM step_runs AS r
                   WHERE r.run_id = s.run_id AND r.step_id = s.step_id
                     AND r.started_at <> s.started_at)
ON CONFLICT (run_id, step_id, started_at) DO UPDATE SET
    parent_step_id = excluded.parent_step_id,
    step = excluded.step,
    ordinal = excluded.ordinal,
    attempt = excluded.attempt,
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
