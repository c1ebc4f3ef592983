-- Recent job runs, newest first, optionally of one job (:job NULL = every job).
-- Columns: run_id, job, started_at, finished_at, status, rows_affected, attempts, error,
-- trigger, host, pid.
SELECT run_id, job, started_at, finished_at, status, rows_affected, attempts, error,
       trigger, host, pid
  FROM job_runs
 WHERE CAST(:job AS VARCHAR) IS NULL OR job = CAST(:job AS VARCHAR)
 ORDER BY started_at DESC, run_id DESC
 LIMIT :limit
