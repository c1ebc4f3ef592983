-- SQL type names of the columns a described statement returns, in column order, for the
-- column definition list of wh_readonly.run_query; pseudo-types (void, record) cannot be
-- declared there and are read as text. Parameters: :oids, :mods (integer arrays).
-- Result: type_name, pseudo per column.
SELECT format_type(u.oid, nullif(u.mod, -1)) AS type_name, t.typtype = 'p' AS pseudo
  FROM unnest(CAST(:oids AS oid[]), CAST(:mods AS integer[])) WITH ORDINALITY AS u(oid, mod, i)
  JOIN pg_type t ON t.oid = u.oid
 ORDER BY u.i
