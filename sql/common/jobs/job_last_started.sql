-- When each job last started a run that was not skipped (the scheduler's memory survives
-- restarts because it lives here). Columns: job, last_started.
SELECT job, max(started_at) AS last_started FROM job_runs WHERE status <> 'skipped' GROUP BY job
