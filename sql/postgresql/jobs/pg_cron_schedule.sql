-- Run in the cron database: schedule job :job of the warehouse database :database under the
-- name :name. The command is built here with format(%L), never by string concatenation in
-- Python. cron.schedule_in_database exists since pg_cron 1.4. Result: the cron job id.
SELECT cron.schedule_in_database(CAST(:name AS text), CAST(:schedule AS text),
                                 format('SELECT wh_job_cron(%L)', CAST(:job AS text)),
                                 CAST(:database AS text))
