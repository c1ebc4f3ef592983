-- 0018 up: nothing changes on DuckDB (0018 makes PostgreSQL's compress job faster).
SELECT 1;
