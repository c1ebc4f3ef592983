-- A job run begins: recorded (and committed) before the body runs, so a run killed midway
-- stays visible as 'running' until the next runner of the job marks it 'abandoned'.
-- Result: run_id.
INSERT INTO job_runs (job, started_at, status, attempts, trigger, host, pid)
VALUES (:job, :started_at, 'running', 0, :trigger, :host, :pid)
RETURNING run_id
