-- Whether the session holding the evaluator lease is still alive (the lock lives as long as
-- the session does). Result: 1.
SELECT 1
