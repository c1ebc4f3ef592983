-- Run in the cron database: remove the schedules this warehouse database installed.
-- Result: the names removed.
SELECT jobname, cron.unschedule(jobid) FROM cron.job
 WHERE left(jobname, length(CAST(:prefix AS text))) = CAST(:prefix AS text)
