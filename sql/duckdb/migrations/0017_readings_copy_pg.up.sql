-- 0017 up: nothing changes on DuckDB (its pivoted copy is 0016's; 0017 adds PostgreSQL's).
SELECT 1;
