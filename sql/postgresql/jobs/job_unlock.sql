-- Release the job's advisory lock taken by jobs/job_lock.sql. Result: whether it was held.
SELECT pg_advisory_unlock(hashtext('wh_job:' || :job))
