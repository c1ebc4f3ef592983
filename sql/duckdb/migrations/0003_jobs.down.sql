-- 0003 jobs, DuckDB: drop everything 0003 created (Parquet files under the archive root stay).
DROP MACRO TABLE IF EXISTS wh_invalidated_ranges;
DROP VIEW IF EXISTS all_points;
DROP TABLE IF EXISTS job_runs;
DROP SEQUENCE IF EXISTS job_runs_seq;
DROP TABLE IF EXISTS archive_manifest;
DROP TABLE IF EXISTS retention_policies;
DROP TABLE IF EXISTS rollup_invalidations;
DROP SEQUENCE IF EXISTS rollup_invalidations_seq;
DROP TABLE IF EXISTS rollup_watermarks;
DROP TABLE IF EXISTS points_1d;
DROP TABLE IF EXISTS points_1h;
DROP TABLE IF EXISTS points_1m;
