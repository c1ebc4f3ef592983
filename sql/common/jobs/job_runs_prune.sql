-- Forget runs of :job that started before :before (the runner keeps job_runs bounded: a job
-- run every minute would otherwise add half a million rows a year).
DELETE FROM job_runs WHERE job = :job AND started_at < :before AND status <> 'running'
