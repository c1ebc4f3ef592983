-- Names of the scalar and aggregate functions and macros DuckDB has loaded: a name outside
-- them would make DuckDB try to autoload an extension, so the query is refused instead.
-- Result: function_name.
SELECT DISTINCT lower(function_name) AS function_name FROM duckdb_functions()
 WHERE function_type IN ('scalar', 'aggregate', 'macro')
