-- Ingest: a new chunk of points as a plain table, filled by COPY (not FREEZE: frozen
-- rows would be visible to snapshots older than the commit) and indexed
-- afterwards by new_chunk_index.sql (one sorted index build instead of a B-tree insertion
-- per row), then attached by new_chunk_attach.sql, all in the batch's transaction. The CHECK
-- is the partition bound, so the ATTACH trusts it instead of scanning the rows.
-- Placeholders (psycopg.sql): chunk, check (identifiers), lo, hi (timestamptz literals).
CREATE TABLE {chunk} (LIKE points INCLUDING DEFAULTS);
ALTER TABLE {chunk} ADD CONSTRAINT {check} CHECK (ts >= {lo} AND ts < {hi})
