-- 0019 down: nothing to undo on DuckDB.
SELECT 1;
