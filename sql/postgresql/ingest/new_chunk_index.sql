-- Ingest: the primary key of a new chunk, built by one sort of its rows (they arrive in key
-- order, which the sort finds presorted). Same key as points' own; the ATTACH adopts it as
-- the chunk's partition of points_pkey instead of building another.
-- Placeholder (psycopg.sql): chunk.
ALTER TABLE {chunk} ADD PRIMARY KEY (series_id, ts)
