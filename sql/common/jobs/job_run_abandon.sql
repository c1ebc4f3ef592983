-- Runs of :job still marked 'running' while the caller holds the job's lock can only belong
-- to a runner that died (killed, crashed): mark them abandoned.
UPDATE job_runs SET status = 'abandoned', finished_at = :now,
                    error = 'the runner stopped before recording an end (killed?)'
 WHERE job = :job AND status = 'running'
