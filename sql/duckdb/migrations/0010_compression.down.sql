-- 0010 closed-chunk compression, DuckDB, down: the policy and the record of sorted ranges go
-- (the rows stay as they are: sorted or not, they are the same rows).
DROP TABLE IF EXISTS sorted_chunks;
DROP TABLE IF EXISTS compression_policies;
