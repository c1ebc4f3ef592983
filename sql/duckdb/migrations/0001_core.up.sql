-- 0001 core schema, DuckDB.
-- DuckDB keeps one table per kind; time pruning comes from zone maps on the time column,
-- and "chunks" are fixed-width time ranges of those tables (see warehouse/backends/duckdb.py).
-- points has no primary key on purpose: an ART index costs more than the data itself
-- (~12 bytes/point budget); ingest de-duplicates with an anti-join on the batch's time range.
CREATE SEQUENCE series_id_seq START 1;

CREATE TABLE hypertables (
    table_name        VARCHAR PRIMARY KEY,
    time_column       VARCHAR NOT NULL,
    chunk_interval_us BIGINT  NOT NULL CHECK (chunk_interval_us > 0)
);
INSERT INTO hypertables VALUES
    ('points',    'ts',         86400000000),
    ('runs',      'started_at', 604800000000),
    ('step_runs', 'started_at', 604800000000);

CREATE TABLE recipes (
    recipe      VARCHAR PRIMARY KEY,
    description VARCHAR,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE series (
    series_id  INTEGER PRIMARY KEY DEFAULT nextval('series_id_seq'),
    metric     VARCHAR NOT NULL,
    labels     JSON    NOT NULL,
    labels_key VARCHAR NOT NULL,
    unit       VARCHAR,
    kind       VARCHAR NOT NULL DEFAULT 'gauge',
    created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    UNIQUE (metric, labels_key)
);

CREATE TABLE points (
    ts        TIMESTAMPTZ NOT NULL,
    series_id INTEGER     NOT NULL,
    value     DOUBLE      NOT NULL,
    run_id    UUID
);

CREATE TABLE runs (
    run_id         UUID PRIMARY KEY,
    recipe         VARCHAR NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    duration_us    BIGINT,
    status         VARCHAR NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    error_type     VARCHAR,
    error_message  VARCHAR,
    host           VARCHAR,
    params         JSON,
    attributes     JSON,
    cpu_user_us    BIGINT,
    cpu_system_us  BIGINT,
    peak_rss_bytes BIGINT,
    read_bytes     BIGINT,
    written_bytes  BIGINT,
    last_seen_at   TIMESTAMPTZ
);

CREATE TABLE step_runs (
    run_id         UUID    NOT NULL,
    step_id        VARCHAR NOT NULL,
    parent_step_id VARCHAR,
    step           VARCHAR NOT NULL,
    ordinal        INTEGER,
    attempt        INTEGER NOT NULL DEFAULT 1,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    duration_us    BIGINT,
    status         VARCHAR NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    error_type     VARCHAR,
    error_message  VARCHAR,
    host           VARCHAR,
    depends_on     JSON,
    attributes     JSON,
    cpu_user_us    BIGINT,
    cpu_system_us  BIGINT,
    peak_rss_bytes BIGINT,
    read_bytes     BIGINT,
    written_bytes  BIGINT,
    PRIMARY KEY (run_id, step_id)
);
