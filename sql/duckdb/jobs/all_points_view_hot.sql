-- all_points (DuckDB) while no archived rows have left the hot table: the hot points.
-- Columns: ts, series_id, value, run_id.
CREATE OR REPLACE VIEW all_points AS SELECT ts, series_id, value, run_id FROM points
