-- Job compress, in the job's transaction: delete every row of chunk :chunk
-- (wh_compress_empty, migration 0019). Result: one row, the rows deleted.
SELECT wh_compress_empty(CAST(:chunk AS text))
