-- The migration lock: one migrator per database at a time, held until the migrating
-- transaction ends (Warehouse.migrate / `warehouse init`; warehouse/migrate.py serialise).
-- Two `warehouse init` on an empty database otherwise both create the same tables and one
-- fails with UniqueViolation. No parameters, no result.
SELECT pg_advisory_xact_lock(hashtext('warehouse:migrate'))
