-- 0016 up: nothing changes on PostgreSQL (the pivoted copy of compressed chunks that 0016
-- adds is DuckDB's; PostgreSQL's compressed segments are read as they are).
SELECT 1;
