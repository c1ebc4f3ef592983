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
       (epoch_us(s.started_at) - epoch_us(r.started_at)) / CAST(1000 AS DOUBLE PRECISION) AS start_offset_ms,
       (epoch_us(s.finished_at) - epoch_us(r.started_at)) / CAST(1000 AS DOUBLE PRECISION) AS end_offset_ms,
       s.duration_us / CAST(1000 AS DOUBLE PRECISION) AS duration_ms
FROM step_runs AS s
JOIN runs AS r ON r.run_id = s.run_id
