-- The name of this database's read-only role for analyst SQL. Roles are cluster-wide and
-- many warehouses may share one server, so the name is derived from the database's name.
-- Result: one row, column role.
SELECT 'wh_reader_' || left(md5(current_database()), 16) AS role
