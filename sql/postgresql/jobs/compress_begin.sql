-- Job compress, one chunk, first in its transaction: lock chunk :chunk and check it may be
-- encoded (wh_compress_begin, migration 0019). Result: one row, NULL or why it is left hot.
SELECT wh_compress_begin(CAST(:chunk AS text))
