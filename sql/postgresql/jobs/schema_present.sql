-- Whether migration 0003 (jobs) has run: ingest and queries skip the rollup/archive logic
-- on a database at an older revision. Result: one boolean.
SELECT to_regclass('rollup_watermarks') IS NOT NULL AND to_regclass('archive_manifest') IS NOT NULL
