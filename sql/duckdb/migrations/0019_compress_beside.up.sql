-- 0019 up: nothing changes on DuckDB (0019 encodes PostgreSQL's chunks beside their DELETE).
SELECT 1;
