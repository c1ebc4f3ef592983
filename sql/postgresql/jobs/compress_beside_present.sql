-- Job compress: whether the schema has migration 0019's staged encoder (wh_compress_begin,
-- _encoder_lock, _encode, _empty, _publish); a database downgraded below it compresses each
-- chunk in one session (compress_chunk.sql).
SELECT to_regprocedure('wh_compress_publish(text, bigint)') IS NOT NULL
