-- Job compress, after the transaction that emptied chunk :chunk committed: TRUNCATE it when
-- no snapshot can still read its deleted rows (wh_reclaim_chunk, migration 0018). Result:
-- one row, whether it did (false: the job vacuums the chunk instead).
SELECT wh_reclaim_chunk(CAST(:chunk AS text))
