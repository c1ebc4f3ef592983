-- The parse tree of one SELECT statement as JSON (DuckDB's own parser), to check what it
-- reads before running it. Parameter: :statement. Result: one JSON text.
SELECT json_serialize_sql(CAST(:statement AS VARCHAR)) AS tree
