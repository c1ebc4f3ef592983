-- Every table and view DuckDB knows (the warehouse file and the system catalog), for checking
-- the relations an analyst query names. Result: database_name, schema_name, name.
SELECT database_name, schema_name, table_name AS name FROM duckdb_tables()
UNION ALL
SELECT database_name, schema_name, view_name AS name FROM duckdb_views()
