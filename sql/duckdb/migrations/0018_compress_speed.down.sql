-- 0018 down: nothing to undo on DuckDB.
SELECT 1;
