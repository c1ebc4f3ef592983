-- The runs :run_ids (a list) that a write just stored, started in [:start, :end] (the
-- write's own range, for partition pruning; ids compared as UUIDs so the key serves):
-- what run_failed rules read when the change alone does not say which run has which
-- status and recipe. Result: run_id, recipe, status, started_at, finished_at.
SELECT CAST(run_id AS VARCHAR) AS run_id, recipe, status, started_at, finished_at
FROM runs
WHERE started_at >= :start AND started_at <= :end
  AND run_id IN (SELECT CAST(unnest(CAST(:run_ids AS VARCHAR[])) AS UUID))
