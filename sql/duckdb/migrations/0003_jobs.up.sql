-- 0003 jobs, DuckDB: rollups, their watermarks and invalidations, retention policies, the
-- archive manifest, job runs, and the all_points view (re-created by the archive jobs,
-- because the Parquet file list is configuration: see sql/duckdb/jobs/all_points_view.sql).
-- Rollup tables have no primary key for the same reason as points (an ART index costs more
-- than the rows); the refresh job is the only writer and deletes before it inserts.

-- One row per series and bucket. first_*/last_* are the earliest/latest point of the bucket.
CREATE TABLE points_1m (
    series_id   INTEGER     NOT NULL,
    bucket      TIMESTAMPTZ NOT NULL,
    count       BIGINT      NOT NULL,
    sum         DOUBLE      NOT NULL,
    min         DOUBLE      NOT NULL,
    max         DOUBLE      NOT NULL,
    sum_sq      DOUBLE      NOT NULL,
    first_ts    TIMESTAMPTZ NOT NULL,
    first_value DOUBLE      NOT NULL,
    last_ts     TIMESTAMPTZ NOT NULL,
    last_value  DOUBLE      NOT NULL
);
CREATE TABLE points_1h (
    series_id   INTEGER     NOT NULL,
    bucket      TIMESTAMPTZ NOT NULL,
    count       BIGINT      NOT NULL,
    sum         DOUBLE      NOT NULL,
    min         DOUBLE      NOT NULL,
    max         DOUBLE      NOT NULL,
    sum_sq      DOUBLE      NOT NULL,
    first_ts    TIMESTAMPTZ NOT NULL,
    first_value DOUBLE      NOT NULL,
    last_ts     TIMESTAMPTZ NOT NULL,
    last_value  DOUBLE      NOT NULL
);
CREATE TABLE points_1d (
    series_id   INTEGER     NOT NULL,
    bucket      TIMESTAMPTZ NOT NULL,
    count       BIGINT      NOT NULL,
    sum         DOUBLE      NOT NULL,
    min         DOUBLE      NOT NULL,
    max         DOUBLE      NOT NULL,
    sum_sq      DOUBLE      NOT NULL,
    first_ts    TIMESTAMPTZ NOT NULL,
    first_value DOUBLE      NOT NULL,
    last_ts     TIMESTAMPTZ NOT NULL,
    last_value  DOUBLE      NOT NULL
);

-- Every bucket that starts before watermark is materialised, except the buckets that
-- overlap a row of rollup_invalidations (late points not yet rolled up again).
CREATE TABLE rollup_watermarks (
    rollup    VARCHAR PRIMARY KEY,
    source    VARCHAR NOT NULL,
    bucket_us BIGINT  NOT NULL,
    watermark TIMESTAMPTZ
);
INSERT INTO rollup_watermarks VALUES
    ('points_1m', 'points',    60000000,    NULL),
    ('points_1h', 'points_1m', 3600000000,  NULL),
    ('points_1d', 'points_1h', 86400000000, NULL);

-- Written by ingest in the same transaction as the points: per series, a contiguous range
-- of whole minutes [range_start, range_end) below the 1m watermark that got new points.
CREATE SEQUENCE rollup_invalidations_seq START 1;
CREATE TABLE rollup_invalidations (
    inv_id      BIGINT      NOT NULL DEFAULT nextval('rollup_invalidations_seq'),
    series_id   INTEGER     NOT NULL,
    range_start TIMESTAMPTZ NOT NULL,
    range_end   TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- metric '*' = the whole table (whole chunks are dropped); a metric name = that metric's
-- rows of points only (deleted a chunk range at a time).
CREATE TABLE retention_policies (
    table_name VARCHAR NOT NULL,
    metric     VARCHAR NOT NULL DEFAULT '*',
    keep_us    BIGINT  NOT NULL CHECK (keep_us > 0),
    archive    BOOLEAN NOT NULL DEFAULT false,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (table_name, metric)
);

-- One Parquet file per archived unit (a chunk, or one metric's rows of a chunk).
-- path is relative to root; dropped_at is set in the transaction that removes the rows from
-- the hot table; hold_until keeps a restored unit hot until then.
CREATE TABLE archive_manifest (
    table_name  VARCHAR     NOT NULL,
    chunk_name  VARCHAR     NOT NULL,
    chunk_start TIMESTAMPTZ NOT NULL,
    chunk_end   TIMESTAMPTZ NOT NULL,
    metric      VARCHAR     NOT NULL DEFAULT '*',
    root        VARCHAR     NOT NULL,
    path        VARCHAR     NOT NULL,
    rows        BIGINT      NOT NULL,
    min_ts      TIMESTAMPTZ,
    max_ts      TIMESTAMPTZ,
    bytes       BIGINT      NOT NULL,
    sha256      VARCHAR     NOT NULL,
    verified    BOOLEAN     NOT NULL DEFAULT false,
    archived_at TIMESTAMPTZ NOT NULL,
    verified_at TIMESTAMPTZ,
    dropped_at  TIMESTAMPTZ,
    hold_until  TIMESTAMPTZ,
    PRIMARY KEY (table_name, chunk_start, metric)
);

CREATE SEQUENCE job_runs_seq START 1;
CREATE TABLE job_runs (
    run_id        BIGINT      PRIMARY KEY DEFAULT nextval('job_runs_seq'),
    job           VARCHAR     NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR     NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',
                                                         'timeout', 'skipped', 'abandoned',
                                                         'cancelled')),
    rows_affected BIGINT,
    attempts      INTEGER,
    error         VARCHAR,
    trigger       VARCHAR,
    host          VARCHAR,
    pid           INTEGER
);

-- Hot points only until the archive job has moved data out (it then re-creates the view).
CREATE VIEW all_points AS SELECT ts, series_id, value, run_id FROM points;

-- Per series, the invalidated ranges widened to whole buckets of p_bucket_us, cut at p_below
-- (buckets at or after a tier's watermark are not materialised yet), merged where they
-- overlap so that joining them to a source counts each row once. Buckets are UTC-aligned
-- whatever the session's TimeZone (time_bucket's third argument).
CREATE MACRO wh_invalidated_ranges(p_bucket_us, p_below, p_max_inv) AS TABLE
    WITH widened AS (
        SELECT i.series_id,
               time_bucket(to_microseconds(p_bucket_us), i.range_start, 'UTC') AS lo,
               least(time_bucket(to_microseconds(p_bucket_us),
                                 i.range_end - INTERVAL 1 microsecond, 'UTC')
                     + to_microseconds(p_bucket_us), p_below) AS hi
          FROM rollup_invalidations i
         WHERE i.inv_id <= p_max_inv AND i.range_start < p_below
    ), flagged AS (
        SELECT w.*, CASE WHEN w.lo <= max(w.hi) OVER (
                        PARTITION BY w.series_id ORDER BY w.lo, w.hi
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                    THEN 0 ELSE 1 END AS island_start
          FROM widened w
    ), islands AS (
        SELECT f.*, sum(f.island_start) OVER (PARTITION BY f.series_id ORDER BY f.lo, f.hi) AS island
          FROM flagged f
    )
    SELECT s.series_id, min(s.lo) AS lo, max(s.hi) AS hi FROM islands s GROUP BY s.series_id, s.island;
