-- Ingest, first statements of the transaction of a bulk batch that falls inside one chunk of
-- points that does not exist yet (warehouse/backends/postgresql_write.py, claim_new_chunk):
-- the lock wh_ensure_chunk and wh_drop_chunks take, so nobody else creates or drops a chunk
-- of points until this transaction commits, taken before any row lock, as they take it (one
-- lock order: chunk lock, then rows); then a SHARE lock on the default partition (readers
-- pass, inserts wait), so that no row lands there in the new chunk's range between the check
-- of new_chunk_range_used.sql and the ATTACH, which would refuse it.
SELECT pg_advisory_xact_lock(hashtext('wh_chunk:points'));
LOCK TABLE points_default IN SHARE MODE
