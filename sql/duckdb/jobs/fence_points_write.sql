-- Ingest, inside the transaction that writes points: the points_1m watermark. No row lock
-- on DuckDB: one process writes, and in it the refresh job holds the ingest lock
-- (warehouse.ingest.writer.ingest_lock). Result: the watermark (NULL: never refreshed).
SELECT watermark FROM rollup_watermarks WHERE rollup = 'points_1m'
