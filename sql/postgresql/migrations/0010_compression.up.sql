-- 0010 closed-chunk compression, PostgreSQL (issue 15; docs/jobs.md "Compression").
-- A closed chunk of points is rewritten into points_compressed: one row per series and
-- segment of up to 1,000 consecutive points, timestamps as µs deltas (constant steps make
-- long runs of equal bytes, which lz4 folds), values as float8[], run ids as uuid[] (NULL
-- when the segment has none), and the segment's count/min/max/sum/sum_sq/first/last so
-- aggregates over whole segments need not decode. The chunk partition is then emptied.
-- Reads union hot points with decoded segments (warehouse/query/archive_read.py); a write
-- into a compressed range decodes the overlapped segments back into the partition first
-- (wh_decompress_for_write), and the next compress run encodes them again.

CREATE TABLE compression_policies (
    table_name     text PRIMARY KEY CHECK (table_name = 'points'),
    compress_after_us bigint NOT NULL CHECK (compress_after_us > 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE points_compressed (
    series_id   integer          NOT NULL,
    ts_min      timestamptz      NOT NULL,  -- the segment's first point
    ts_max      timestamptz      NOT NULL,  -- and its last: reads prune segments by both
    n           integer          NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    sum         double precision NOT NULL,
    sum_sq      double precision NOT NULL,
    first_value double precision NOT NULL,
    last_value  double precision NOT NULL,
    -- Timestamps: a regular segment (every gap the same, as a scraper's or TSBS's) keeps
    -- its gap in ts_step (µs; 0 for one point) and decodes without a running sum; any
    -- other keeps ts_deltas, µs after the previous point (the first: 0).
    ts_step     bigint,
    ts_deltas   bigint[],
    vals        double precision[] NOT NULL,
    run_ids     uuid[],                     -- NULL: no point of the segment has a run
    PRIMARY KEY (series_id, ts_min),
    CHECK ((ts_step IS NULL) <> (ts_deltas IS NULL))
);
-- Retention, archive and the compress job find a chunk's segments by time alone.
CREATE INDEX points_compressed_ts ON points_compressed (ts_min);
-- Compress segments from 128 bytes on (default: 2 kB), so short segments shrink too.
ALTER TABLE points_compressed SET (toast_tuple_target = 128);
DO $$
BEGIN
    -- lz4 (PostgreSQL 14+, built --with-lz4) is faster and smaller here than pglz.
    ALTER TABLE points_compressed ALTER COLUMN ts_deltas SET COMPRESSION lz4;
    ALTER TABLE points_compressed ALTER COLUMN vals SET COMPRESSION lz4;
    ALTER TABLE points_compressed ALTER COLUMN run_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 not available: segments use the default TOAST compression';
END
$$;

-- The points of one segment, in time order. SQL (not PL/pgSQL) so the planner inlines it;
-- only the branch of the segment's form returns rows.
CREATE FUNCTION wh_segment_points(p_first timestamptz, p_step bigint, p_deltas bigint[],
                                  p_vals double precision[], p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_first + ((u.o - 1) * p_step) * interval '1 microsecond', u.v, u.r
      FROM unnest(p_vals, p_runs) WITH ORDINALITY AS u(v, r, o)
     WHERE p_step IS NOT NULL
    UNION ALL
    SELECT p_first + (sum(u.d) OVER (ORDER BY u.o)) * interval '1 microsecond', u.v, u.r
      FROM unnest(p_deltas, p_vals, p_runs) WITH ORDINALITY AS u(d, v, r, o)
     WHERE p_step IS NULL
$$;

-- Encode every hot row of one points chunk into segments and empty the partition, in the
-- caller's transaction: a crash leaves either the rows or the segments. Refuses (returns
-- NULL and a reason) a chunk whose rows the rollups do not cover yet, since the refresh
-- reads raw points. Returns (rows encoded, segments written, refused).
CREATE FUNCTION wh_compress_chunk(p_chunk text, p_segment integer DEFAULT 1000)
RETURNS TABLE (rows_compressed bigint, segments bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_w     timestamptz;
    v_rows  bigint;
    v_segs  bigint;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    SELECT c.range_start, c.range_end INTO v_start, v_end
      FROM wh_chunks c WHERE c.chunk_name = p_chunk AND c.hypertable = 'points';
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'no such chunk'::text;
        RETURN;
    END IF;
    -- Writers into this chunk hold the same key shared (wh_decompress_for_write): none is
    -- between its decode and its insert while the chunk is encoded.
    PERFORM pg_advisory_xact_lock(hashtext('wh_compress:' || p_chunk));
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', p_chunk);
    SELECT watermark INTO v_w FROM rollup_watermarks WHERE rollup = 'points_1m';
    IF v_w IS NULL OR v_w < v_end THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'not rolled up yet: run refresh_rollups'::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM rollup_invalidations i
                WHERE i.range_start < v_end AND i.range_end > v_start) THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 'late points not rolled up yet'::text;
        RETURN;
    END IF;
    EXECUTE format($q$
        WITH written AS (
        INSERT INTO points_compressed (series_id, ts_min, ts_max, n, min, max, sum, sum_sq,
                                       first_value, last_value, ts_step, ts_deltas, vals,
                                       run_ids)
        SELECT series_id, ts_min, ts_max, n, lo, hi, total, total_sq, vals[1], vals[n],
               CASE WHEN n = 1 THEN 0 WHEN gap_lo = gap_hi THEN gap_lo END,
               -- the segment's first delta is 0: its time is ts_min itself
               CASE WHEN n > 1 AND gap_lo <> gap_hi
                    THEN array_prepend(0::bigint, deltas[2:]) END,
               vals, runs
          FROM (SELECT series_id, min(ts) AS ts_min, max(ts) AS ts_max, count(*) AS n,
                       min(value) AS lo, max(value) AS hi, sum(value) AS total,
                       sum(value * value) AS total_sq,
                       min(d) FILTER (WHERE pos > 0) AS gap_lo,
                       max(d) FILTER (WHERE pos > 0) AS gap_hi,
                       array_agg(d ORDER BY ts) AS deltas,
                       array_agg(value ORDER BY ts) AS vals,
                       CASE WHEN count(run_id) > 0 THEN array_agg(run_id ORDER BY ts) END AS runs
                  FROM (SELECT series_id, ts, value, run_id, d, rn / %1$s AS seg,
                               rn %% %1$s AS pos
                          FROM (SELECT series_id, ts, value, run_id,
                                       -- date_part's float8 seconds, rounded, are exact µs
                                       -- for any gap inside a chunk and cost a third of
                                       -- extract's numeric
                                       coalesce(round(date_part('epoch', ts - lag(ts) OVER w)
                                                      * 1000000)::bigint, 0) AS d,
                                       row_number() OVER w - 1 AS rn
                                  FROM %2$I WINDOW w AS (PARTITION BY series_id ORDER BY ts)
                               ) numbered) r
                 GROUP BY series_id, seg) s
        RETURNING n)
        SELECT count(*), coalesce(sum(n), 0) FROM written$q$, p_segment, p_chunk)
    INTO v_segs, v_rows;
    EXECUTE format('TRUNCATE %I', p_chunk);
    RETURN QUERY SELECT v_rows, v_segs, NULL::text;
END
$$;

-- Before a write of points: for each series p_series[i], decode its segments that overlap
-- the whole minutes of [p_lo[i], p_hi[i]] (the batch's range of that series) back into
-- points. Ingest invalidates that same per-series range of minutes when it lies below the
-- rollup watermark, and the refresh recomputes it from raw points, so all of it must be hot;
-- the insert's de-duplication then also sees every stored key. Holds the compress keys of
-- the chunks in the batch's range shared until commit. Returns rows decoded.
CREATE FUNCTION wh_decompress_for_write(p_series integer[], p_lo timestamptz[],
                                        p_hi timestamptz[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c_origin constant timestamptz := '2000-01-03 00:00:00+00';
    v_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('wh_compress:' || c.chunk_name))
       FROM (SELECT chunk_name FROM wh_chunks
              WHERE hypertable = 'points'
                AND range_end > date_bin('1 minute', (SELECT min(x) FROM unnest(p_lo) x),
                                         c_origin)
                AND range_start <= (SELECT max(x) FROM unnest(p_hi) x)
              ORDER BY range_start) c;
    WITH wanted AS (
        SELECT r.series_id, date_bin('1 minute', r.lo, c_origin) AS lo,
               date_bin('1 minute', r.hi, c_origin) + interval '1 minute' AS hi
          FROM unnest(p_series, p_lo, p_hi) AS r(series_id, lo, hi)),
    seg AS (
        DELETE FROM points_compressed s USING wanted w
         WHERE s.series_id = w.series_id AND s.ts_max >= w.lo AND s.ts_min < w.hi
        RETURNING s.series_id, s.ts_min, s.ts_step, s.ts_deltas, s.vals, s.run_ids)
    INSERT INTO points (ts, series_id, value, run_id)
    SELECT p.ts, seg.series_id, p.value, p.run_id
      FROM seg CROSS JOIN LATERAL wh_segment_points(seg.ts_min, seg.ts_step, seg.ts_deltas,
                                                    seg.vals, seg.run_ids) p;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- drop_chunks: as in 0001, and the segments of each dropped chunk go with it.
CREATE OR REPLACE FUNCTION wh_drop_chunks(p_table text, p_older_than timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    v_chunk record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('wh_chunk:' || p_table));
    FOR v_chunk IN
        SELECT c.chunk_name, c.range_start, c.range_end FROM wh_chunks c
         WHERE c.hypertable = p_table AND c.range_end <= p_older_than ORDER BY c.range_start
    LOOP
        EXECUTE format('DROP TABLE %I', v_chunk.chunk_name);
        DELETE FROM wh_chunks WHERE chunk_name = v_chunk.chunk_name;
        IF p_table = 'points' THEN
            DELETE FROM points_compressed
             WHERE ts_min >= v_chunk.range_start AND ts_min < v_chunk.range_end;
        END IF;
        RETURN NEXT v_chunk.chunk_name;
    END LOOP;
END
$$;

-- Retention of one unit: as in 0003, with the unit's compressed rows counted (the archive
-- invariant compares them with the manifest) and deleted with it.
CREATE OR REPLACE FUNCTION wh_retention_drop(p_table text, p_start timestamptz, p_end timestamptz,
                                  p_metric text, p_archive boolean,
                                  p_now timestamptz DEFAULT now())
RETURNS TABLE (removed bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_chunk text;
    v_rows bigint;
    v_w timestamptz;
    m archive_manifest%ROWTYPE;
    v_found boolean;
BEGIN
    -- A long reader of the chunk must not make retention (and everyone queued behind its
    -- lock request) wait indefinitely: give up after a while; the runner retries later.
    PERFORM set_config('lock_timeout', '10s', true);
    PERFORM pg_advisory_xact_lock(hashtext('wh_chunk:' || p_table));
    IF p_metric = '*' THEN
        SELECT c.chunk_name INTO v_chunk FROM wh_chunks c
         WHERE c.hypertable = p_table AND c.range_start = p_start AND c.range_end = p_end;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::bigint, 'no such chunk'::text;
            RETURN;
        END IF;
    END IF;
    -- Ingest holds the manifest rows of the units it writes into FOR SHARE: lock before
    -- counting so that a concurrent write is either counted or refused (it sees dropped_at).
    SELECT * INTO m FROM archive_manifest a
     WHERE a.table_name = p_table AND a.chunk_start = p_start AND a.metric = p_metric FOR UPDATE;
    v_found := FOUND;
    IF v_found AND m.hold_until > p_now THEN
        RETURN QUERY SELECT 0::bigint, format('restored; held until %s', m.hold_until);
        RETURN;
    END IF;
    IF p_metric = '*' THEN
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', v_chunk);
        EXECUTE format('SELECT count(*) FROM %I', v_chunk) INTO v_rows;
    ELSE
        SELECT count(*) INTO v_rows FROM points p
         WHERE p.ts >= p_start AND p.ts < p_end
           AND p.series_id IN (SELECT s.series_id FROM series s WHERE s.metric = p_metric);
    END IF;
    -- Compressed rows of the unit count too (0010). The chunk's lock above keeps the
    -- compress job and writers' decoding out until commit.
    IF p_table = 'points' THEN
        v_rows := v_rows + coalesce((
            SELECT sum(c.n) FROM points_compressed c
             WHERE c.ts_min >= p_start AND c.ts_min < p_end
               AND (p_metric = '*' OR c.series_id IN (
                    SELECT s.series_id FROM series s WHERE s.metric = p_metric))), 0);
    END IF;
    IF v_rows = 0 THEN  -- nothing to lose: an empty chunk goes whatever the policy
        IF p_metric = '*' THEN
            EXECUTE format('DROP TABLE %I', v_chunk);
            DELETE FROM wh_chunks WHERE chunk_name = v_chunk;
        END IF;
        RETURN QUERY SELECT 0::bigint, NULL::text;
        RETURN;
    END IF;
    IF p_archive AND NOT v_found THEN
        RETURN QUERY SELECT 0::bigint, 'not archived yet'::text;
        RETURN;
    END IF;
    IF p_archive AND NOT m.verified THEN
        RETURN QUERY SELECT 0::bigint, 'archive not verified'::text;
        RETURN;
    END IF;
    IF p_archive AND (m.rows <> v_rows OR m.dropped_at IS NOT NULL) THEN
        RETURN QUERY SELECT 0::bigint,
            format('manifest has %s rows, the chunk %s: archive again first', m.rows, v_rows);
        RETURN;
    END IF;
    IF p_table = 'points' THEN
        SELECT watermark INTO v_w FROM rollup_watermarks WHERE rollup = 'points_1m';
        IF v_w IS NULL OR v_w < p_end THEN
            RETURN QUERY SELECT 0::bigint, 'not rolled up yet: run refresh_rollups'::text;
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM rollup_invalidations i
                    WHERE i.range_start < p_end AND i.range_end > p_start
                      AND (p_metric = '*' OR i.series_id IN (
                           SELECT s.series_id FROM series s WHERE s.metric = p_metric))) THEN
            RETURN QUERY SELECT 0::bigint, 'late points not rolled up yet'::text;
            RETURN;
        END IF;
    END IF;

    IF p_metric = '*' THEN
        EXECUTE format('DROP TABLE %I', v_chunk);
        DELETE FROM wh_chunks WHERE chunk_name = v_chunk;
    ELSE
        DELETE FROM points p
         WHERE p.ts >= p_start AND p.ts < p_end
           AND p.series_id IN (SELECT s.series_id FROM series s WHERE s.metric = p_metric);
    END IF;
    IF p_table = 'points' THEN
        DELETE FROM points_compressed c
         WHERE c.ts_min >= p_start AND c.ts_min < p_end
           AND (p_metric = '*' OR c.series_id IN (
                SELECT s.series_id FROM series s WHERE s.metric = p_metric));
    END IF;
    -- A manifest row that still describes the rows (also under a policy that no longer
    -- archives) now stands for them: queries and restore read it from here on.
    UPDATE archive_manifest a SET dropped_at = p_now, hold_until = NULL
     WHERE a.table_name = p_table AND a.chunk_start = p_start AND a.metric = p_metric
       AND a.verified AND a.rows = v_rows AND a.dropped_at IS NULL;
    RETURN QUERY SELECT v_rows, NULL::text;
END
$$;


-- The SQL-only retention (pg_cron) as in 0006, with compressed rows of archived metrics
-- holding their chunk back as hot rows do.
CREATE OR REPLACE FUNCTION wh_apply_retention(p_now timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    u record;
    v_total bigint := 0;
    v_n bigint;
BEGIN
    FOR u IN SELECT * FROM wh_retention_units(p_now) r
              ORDER BY r.chunk_start, r.table_name, r.metric = '*', r.metric LOOP
        IF u.metric = '*' AND NOT u.archive AND u.table_name = 'points' AND EXISTS (
            SELECT 1 FROM retention_policies q JOIN series s ON s.metric = q.metric
             WHERE q.table_name = 'points' AND q.metric <> '*' AND q.archive
               AND (EXISTS (SELECT 1 FROM points x
                             WHERE x.series_id = s.series_id
                               AND x.ts >= u.chunk_start AND x.ts < u.chunk_end)
                    OR EXISTS (SELECT 1 FROM points_compressed x
                                WHERE x.series_id = s.series_id
                                  AND x.ts_min >= u.chunk_start AND x.ts_min < u.chunk_end))) THEN
            CONTINUE;
        END IF;
        SELECT d.removed INTO v_n
          FROM wh_retention_drop(u.table_name, u.chunk_start, u.chunk_end, u.metric,
                                 u.archive, p_now) d;
        v_total := v_total + coalesce(v_n, 0);
    END LOOP;
    RETURN v_total;
END
$$;

-- all_points (the analysts' "every point" view): hot rows and decoded segments.
CREATE OR REPLACE VIEW all_points AS
SELECT ts, series_id, value, run_id FROM points
UNION ALL
SELECT s.ts, c.series_id, s.value, s.run_id
  FROM points_compressed c
 CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals,
                                     c.run_ids) s;
