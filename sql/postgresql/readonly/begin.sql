-- Analyst SQL (warehouse/backends/readonly_postgresql.py): the transaction it runs in reads one
-- snapshot and cannot write.
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY
