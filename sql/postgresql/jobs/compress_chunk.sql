-- Job compress, one chunk: encode its hot rows into points_compressed and empty it, in the
-- caller's transaction (wh_compress_chunk, sql/postgresql/migrations/0010_compression.up.sql).
-- Result: one row (rows_compressed, segments, refused).
SELECT rows_compressed, segments, refused FROM wh_compress_chunk(CAST(:chunk AS text))
