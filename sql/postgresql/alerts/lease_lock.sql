-- One alert evaluator per database: a session-level advisory lock, held on a dedicated
-- connection for as long as the evaluator runs and freed when that connection ends (also
-- when the process is killed). Result: whether the lock was taken.
SELECT pg_try_advisory_lock(hashtext('wh_alerts:evaluator'))
