-- Job compress: encode the series :from up to :to (NULL: no bound) of chunk :chunk into
-- points_compressed_staging, in the encoder's own session beside the job's DELETE or in the
-- job's transaction before it (wh_compress_encode, migration 0019). Result: one row, the
-- segments staged.
SELECT wh_compress_encode(CAST(:chunk AS text), CAST(:from AS integer), CAST(:to AS integer))
