-- Upsert a staged batch into runs.
-- Expects a temporary table _stage_runs created LIKE runs, after ingest/move_runs.sql.
-- run_id is unique (migration 0005: run_keys); the conflict target is the partitioned
-- table's primary key (run_id, started_at), which move_runs.sql has lined up.
-- A row in a terminal status (succeeded, failed, cancelled) is never turned back into
-- 'running' by a late or replayed heartbeat; replaying the same batch changes nothing.
INSERT INTO runs (run_id, recipe, started_at, finished_at, duration_us, status, error_type, error_message, host, params, attributes, cpu_user_us, cpu_system_us, peak_rss_bytes, read_bytes, written_bytes, last_seen_at)
SELECT run_id,
       recipe,
       started_at,
       finished_at,
       duration_us,
       status,
       error_type,
       error_message,
       host,
       params,
       attributes,
       cpu_user_us,
       cpu_system_us,
       peak_rss_bytes,
       read_bytes,
       written_bytes,
       last_seen_at
FROM _stage_runs AS s
-- A run still stored under another start was kept by the terminal-status rule (move_runs.sql
-- moved every other one): skip it, as the WHERE below skips such an update.
WHERE NOT EXISTS (SELECT 1 FROM runs AS r
                   WHERE r.run_id = s.run_id AND r.started_at <> s.started_at)
ON CONFLICT (run_id, started_at) DO UPDATE SET
    recipe = excluded.recipe,
    finished_at = excluded.finished_at,
    duration_us = excluded.duration_us,
    status = excluded.status,
    error_type = excluded.error_type,
    error_message = excluded.error_message,
    host = excluded.host,
    params = excluded.params,
    attributes = excluded.attributes,
    cpu_user_us = excluded.cpu_user_us,
    cpu_system_us = excluded.cpu_system_us,
    peak_rss_bytes = excluded.peak_rss_bytes,
    read_bytes = excluded.read_bytes,
    written_bytes = excluded.written_bytes,
    last_seen_at = excluded.last_seen_at
WHERE runs.status = 'running' OR excluded.status <> 'running'
