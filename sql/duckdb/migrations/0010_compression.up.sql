-- 0010 closed-chunk compression, DuckDB: the policy, and the chunk ranges of points that the
-- compress job has rewritten sorted by (series_id, ts) so that row-group zone maps on
-- series_id skip other series (DuckDB stores columns compressed already). `rows` is the
-- range's row count when it was sorted: a late write changes it, which marks the range for
-- sorting again (docs/jobs.md "Compression").
CREATE TABLE compression_policies (
    table_name        VARCHAR PRIMARY KEY CHECK (table_name = 'points'),
    compress_after_us BIGINT  NOT NULL CHECK (compress_after_us > 0),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE sorted_chunks (
    chunk_start TIMESTAMPTZ PRIMARY KEY,
    chunk_end   TIMESTAMPTZ NOT NULL,
    rows        BIGINT      NOT NULL,
    sorted_at   TIMESTAMPTZ NOT NULL
);
