-- Analyst SQL (warehouse/backends/readonly_postgresql.py): the transaction it runs in reads one
-- snapshot and cannot write; it must be the first statement of the transaction.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
