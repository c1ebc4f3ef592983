-- 0016 down: nothing to undo on PostgreSQL.
SELECT 1;
