-- 0003 jobs, PostgreSQL: drop everything 0003 created (Parquet files under the archive root
-- stay). pg_cron schedules made by `warehouse jobs install-pg-cron` live in the cron
-- database: remove them with `warehouse jobs install-pg-cron --remove` before downgrading.
DROP FUNCTION IF EXISTS wh_job_cron(text);
DROP FUNCTION IF EXISTS wh_apply_retention(timestamptz);
DROP FUNCTION IF EXISTS wh_retention_units(timestamptz);
DROP FUNCTION IF EXISTS wh_retention_drop(text, timestamptz, timestamptz, text, boolean, timestamptz);
DROP FUNCTION IF EXISTS wh_refresh_rollups(timestamptz, bigint);
DROP FUNCTION IF EXISTS wh_invalidated_ranges(bigint, timestamptz, bigint);
DROP FUNCTION IF EXISTS wh_bucket_floor(timestamptz, bigint);
DROP VIEW IF EXISTS all_points;
DROP TABLE IF EXISTS job_runs;
DROP TABLE IF EXISTS archive_manifest;
DROP TABLE IF EXISTS retention_policies;
DROP TABLE IF EXISTS rollup_invalidations;
DROP TABLE IF EXISTS rollup_watermarks;
DROP TABLE IF EXISTS points_1d;
DROP TABLE IF EXISTS points_1h;
DROP TABLE IF EXISTS points_1m;
