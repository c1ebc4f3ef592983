-- Ingest: a loaded and indexed new chunk becomes a partition of points and is catalogued.
-- Locks until commit: SHARE UPDATE EXCLUSIVE on points (readers and writers of other chunks
-- pass; CREATE TABLE ... PARTITION OF, which wh_ensure_chunk runs, takes ACCESS EXCLUSIVE on
-- points), ACCESS EXCLUSIVE on the chunk (nobody else can see it yet) and on points_default,
-- whose rows the ATTACH checks against the new bound: a query that cannot prune the default
-- partition waits from here to the commit (the ATTACH is the batch's last big statement).
-- The CHECK goes once the bound holds the same rule.
-- Placeholders (psycopg.sql): chunk, check (identifiers), name, lo, hi (literals).
ALTER TABLE points ATTACH PARTITION {chunk} FOR VALUES FROM ({lo}) TO ({hi});
ALTER TABLE {chunk} DROP CONSTRAINT {check};
INSERT INTO wh_chunks (chunk_name, hypertable, range_start, range_end)
VALUES ({name}, 'points', {lo}, {hi})
