-- Job compress, the encoder's own session, before the job's transaction locks chunk :chunk:
-- ACCESS SHARE on it (wh_compress_encoder_lock, migration 0019). Result: one row, whether it
-- was granted within 10 s.
SELECT wh_compress_encoder_lock(CAST(:chunk AS text))
