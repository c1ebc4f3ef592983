-- 0010 closed-chunk compression, DuckDB: only the policy. DuckDB already stores columns
-- compressed; the compress job re-sorts closed chunk ranges by (series_id, ts) instead
-- (docs/jobs.md "Compression").
CREATE TABLE compression_policies (
    table_name        VARCHAR PRIMARY KEY CHECK (table_name = 'points'),
    compress_after_us BIGINT  NOT NULL CHECK (compress_after_us > 0),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
