-- all_points (DuckDB): the hot points plus every archive file whose rows have left the hot
-- table, so analysts query all history in one place. Re-created by the archive, retention
-- and restore jobs: {files} is replaced by the quoted list of those files (DDL takes no bind
-- parameters; the paths come from archive_manifest). Columns: ts, series_id, value, run_id.
CREATE OR REPLACE VIEW all_points AS
SELECT ts, series_id, value, run_id FROM points
UNION ALL
SELECT ts, series_id, value, CAST(run_id AS UUID) AS run_id
  FROM read_parquet([{files}], hive_partitioning = false)
