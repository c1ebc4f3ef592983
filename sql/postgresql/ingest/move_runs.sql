-- Runs rewritten with a corrected start: move the stored row to its new started_at (a
-- cross-chunk UPDATE) before upsert_runs, which then finds it by (run_id, started_at), so a
-- run stays one row. Same rule as the upsert: a terminal row is never rewritten by a
-- 'running' one.
-- Expects a temporary table _stage_runs created LIKE runs (one row per run_id).
UPDATE runs AS r
   SET started_at = s.started_at
  FROM _stage_runs AS s
 WHERE r.run_id = s.run_id
   AND r.started_at <> s.started_at
   AND (r.status = 'running' OR s.status <> 'running')
