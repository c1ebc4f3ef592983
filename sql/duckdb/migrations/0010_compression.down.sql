-- 0010 closed-chunk compression, DuckDB, down: the policy goes.
DROP TABLE IF EXISTS compression_policies;
