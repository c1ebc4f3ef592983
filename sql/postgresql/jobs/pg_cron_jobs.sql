-- Run in the cron database: the schedules this warehouse database installed.
-- Columns: jobid, jobname, schedule, command, database, active.
SELECT jobid, jobname, schedule, command, database, active
  FROM cron.job
 WHERE left(jobname, length(CAST(:prefix AS text))) = CAST(:prefix AS text) ORDER BY jobname
