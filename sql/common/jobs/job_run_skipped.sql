-- A run that did not start because another runner holds the job.
INSERT INTO job_runs (job, started_at, finished_at, status, rows_affected, attempts, error,
                      trigger, host, pid)
VALUES (:job, :now, :now, 'skipped', 0, 0, 'another runner holds this job', :trigger, :host, :pid)
