-- One runner per job: a session-level advisory lock, held on a dedicated connection for the
-- whole run and freed when that connection ends (also if the runner is killed). pg_cron
-- runs take the same key (wh_job_cron). Result: whether the lock was taken.
SELECT pg_try_advisory_lock(hashtext('wh_job:' || :job))
