-- Runs that finished in [:start, :end] or are still running, started after :since, of one
-- recipe (:recipe) or of all (NULL). Result: run_id, recipe, status, started_at,
-- finished_at, duration_us.
SELECT CAST(run_id AS VARCHAR) AS run_id, recipe, status, started_at, finished_at,
       duration_us
FROM runs
WHERE started_at >= :since AND started_at <= :end
  AND (CAST(:recipe AS VARCHAR) IS NULL OR recipe = :recipe)
  AND ((finished_at >= :start AND finished_at <= :end) OR status = 'running')
