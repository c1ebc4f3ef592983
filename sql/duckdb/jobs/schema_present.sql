-- Whether migration 0003 (jobs) has run: ingest and queries skip the rollup/archive logic
-- on a database at an older revision. Result: one boolean.
SELECT count(*) = 2 FROM duckdb_tables()
 WHERE database_name = current_database() AND schema_name = current_schema()
   AND table_name IN ('rollup_watermarks', 'archive_manifest')
