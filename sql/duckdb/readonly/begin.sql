-- Analyst SQL (warehouse/backends/readonly_duckdb.py) runs in a transaction that cannot
-- write: DuckDB refuses any change to the database in it (nextval included).
BEGIN TRANSACTION READ ONLY
