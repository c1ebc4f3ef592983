-- The migration lock on DuckDB: nothing to take. One process at a time opens the file
-- read-write (DuckDB's own file lock), and threads of that process migrate under its write
-- fence (Warehouse.migrate). No parameters; a constant row.
SELECT 1
