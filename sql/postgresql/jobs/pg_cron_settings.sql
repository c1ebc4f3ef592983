-- Where pg_cron keeps its schedules: the database named by cron.database_name (NULL when
-- pg_cron is not in shared_preload_libraries), and this database's name.
SELECT current_setting('cron.database_name', true) AS cron_database,
       current_database() AS this_database
