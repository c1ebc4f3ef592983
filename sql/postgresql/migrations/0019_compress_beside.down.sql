-- 0019 down: the job encodes in its own session again (0015's wh_compress_chunk).
DROP FUNCTION wh_compress_publish(text, bigint);
DROP FUNCTION wh_compress_empty(text);
DROP FUNCTION wh_compress_encode(text, integer, integer, integer);
DROP FUNCTION wh_compress_begin(text);
DROP FUNCTION wh_compress_encoder_lock(text);
DROP TABLE points_compressed_staging;
