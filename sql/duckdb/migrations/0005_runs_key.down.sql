-- 0005 down: nothing was changed on DuckDB.
SELECT 1;
