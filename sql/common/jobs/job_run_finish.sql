-- A job run ends: status succeeded|failed|timeout|cancelled, rows affected, the error.
UPDATE job_runs
   SET finished_at = :finished_at, status = :status, rows_affected = :rows_affected,
       attempts = :attempts, error = :error
 WHERE run_id = :run_id
