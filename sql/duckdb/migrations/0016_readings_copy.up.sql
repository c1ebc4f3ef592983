-- 0016 the pivoted copy of compressed chunks, DuckDB (docs/jobs.md "Compression"). The
-- compress job copies each chunk it sorts into `readings`: one row per label set
-- (`entity`) and instant, one DOUBLE column per metric. A frame of several metrics over
-- copied chunks then reads one row where `points` needs one per metric and a join to line
-- them up (TSBS high-cpu-all: 104 -> ~10 ms; docs/tsbs.md). `points` stays the truth: a
-- write into a copied chunk, retention and drop_chunks delete its copy (and its
-- `reading_chunks` row) in their own transaction, and the next compress run copies it again.
-- Metric columns are added by the job as metrics appear, named m<col> after
-- `reading_columns.col`: no user text ever becomes an identifier.
CREATE TABLE readings (
    ts     TIMESTAMPTZ NOT NULL,
    entity INTEGER     NOT NULL
);

-- A label set (series.labels_key) and its entity number in `readings`.
CREATE TABLE reading_entities (
    labels_key VARCHAR PRIMARY KEY,
    entity     INTEGER NOT NULL UNIQUE
);

-- A metric and its column of `readings` (m<col>).
CREATE TABLE reading_columns (
    metric VARCHAR PRIMARY KEY,
    col    INTEGER NOT NULL UNIQUE
);

-- Chunk ranges whose copy is complete (copied = false: the job left the chunk without a
-- copy, too many metrics; frames over it read points). copy_no is new for every copy made:
-- a reader that planned from a remembered list of copies checks, in its own snapshot, that
-- the copies it reads are those (warehouse/query/frame_readings.py).
CREATE SEQUENCE reading_copy_seq START 1;
CREATE TABLE reading_chunks (
    chunk_start TIMESTAMPTZ PRIMARY KEY,
    chunk_end   TIMESTAMPTZ NOT NULL,
    copied      BOOLEAN     NOT NULL,
    copied_at   TIMESTAMPTZ NOT NULL,
    copy_no     BIGINT      NOT NULL
);
