-- Job compress, last in the job's transaction: move chunk :chunk's staged segments into
-- points_compressed, checking they hold the :deleted points its DELETE removed
-- (wh_compress_publish, migration 0019). Result: one row (rows_compressed, segments, refused).
SELECT rows_compressed, segments, refused
  FROM wh_compress_publish(CAST(:chunk AS text), CAST(:deleted AS bigint))
