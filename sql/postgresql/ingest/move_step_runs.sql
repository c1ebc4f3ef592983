-- Steps rewritten with a corrected start: move the stored row to its new started_at (a
-- cross-chunk UPDATE) before upsert_step_runs, which then finds it by its primary key
-- (run_id, step_id, started_at), so a step stays one row. Same rule as the upsert: a terminal
-- row is never rewritten by a 'running' one.
-- Expects a temporary table _stage_step_runs created LIKE step_runs (one row per step).
UPDATE step_runs AS r
   SET started_at = s.started_at
  FROM _stage_step_runs AS s
 WHERE r.run_id = s.run_id
   AND r.step_id = s.step_id
   AND r.started_at <> s.started_at
   AND (r.status = 'running' OR s.status <> 'running')
