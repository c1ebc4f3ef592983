-- 0019 up: the compress job's encoding runs beside its DELETE, in a second session (issue 15;
-- docs/jobs.md "Compression"). A TSBS day (8.64M points) spent ~4.4 s encoding and then ~2.6 s
-- deleting the chunk's rows, one after the other in one session; neither reads what the other
-- writes, so a second session now encodes most of the chunk's series into an unlogged staging
-- table while the job's transaction encodes the others there (a fifth: jobs/compress.py's
-- OWN_SHARE) and then deletes the rows, and the job's transaction then moves the staged
-- segments into points_compressed (already compressed: moved, not compressed again). The
-- publish stays one transaction, as 0015's: segments and DELETE commit together, and older
-- snapshots still read the rows. The encoder's statement is 0015's but for its series bounds;
-- 0015's wh_compress_chunk stays (a database below 0019 runs it). Where the second session
-- cannot lock the chunk, the job's transaction encodes every series itself, before its DELETE.
--
-- Why the second session reads exactly the rows the job deletes: it takes ACCESS SHARE on the
-- chunk first (compatible with everything but ACCESS EXCLUSIVE: taking it later could queue
-- behind a waiting ACCESS EXCLUSIVE request, which waits for the job, which waits for the
-- encoder, a deadlock the server could not see), then the job takes its EXCLUSIVE lock
-- (writers have committed or wait), and only then does the encoder's statement take its
-- snapshot: both see every row committed before the lock, and no writer can commit one until
-- the job commits. The job's DELETE is not committed while the encoder reads, so it does not
-- hide any row from it. The publish also checks that the staged segments hold as many points
-- as the DELETE removed, and fails the chunk otherwise.

-- Segments encoded by a compress job's second session, waiting for the job's transaction to
-- move them into points_compressed. Unlogged: a crash loses only work the job redoes. Rows of
-- a job that failed are deleted by the next run on that chunk (wh_compress_begin).
CREATE UNLOGGED TABLE points_compressed_staging (
    chunk_name text NOT NULL,
    LIKE points_compressed INCLUDING COMPRESSION
);
-- as points_compressed: compress from 128 bytes on, so the moved values are what that table
-- would have compressed itself
ALTER TABLE points_compressed_staging SET (toast_tuple_target = 128);
CREATE INDEX points_compressed_staging_chunk ON points_compressed_staging (chunk_name);

-- The second session, before the job's transaction locks the chunk: ACCESS SHARE on chunk
-- p_chunk, for the rest of its transaction (see above). Returns false, having waited up to
-- 10 s (the job's own lock_timeout), when it is not granted: the job then encodes alone.
CREATE FUNCTION wh_compress_encoder_lock(p_chunk text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    EXECUTE format('LOCK TABLE %I IN ACCESS SHARE MODE', p_chunk);
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    RETURN false;
END
$$;

-- The job's transaction, first: 0015's checks and locks for chunk p_chunk (the chunk's
-- compress key, EXCLUSIVE), then clears what a failed run left staged for it (or for a chunk
-- dropped since). Returns NULL, or why the chunk is left hot.
CREATE FUNCTION wh_compress_begin(p_chunk text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_w     timestamptz;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    SELECT c.range_start, c.range_end INTO v_start, v_end
      FROM wh_chunks c WHERE c.chunk_name = p_chunk AND c.hypertable = 'points';
    IF NOT FOUND THEN
        RETURN 'no such chunk';
    END IF;
    -- Writers into this chunk hold the same key shared (wh_decompress_for_write): none is
    -- between its decode and its insert while the chunk is encoded.
    PERFORM pg_advisory_xact_lock(hashtext('wh_compress:' || p_chunk));
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', p_chunk);
    SELECT watermark INTO v_w FROM rollup_watermarks WHERE rollup = 'points_1m';
    IF v_w IS NULL OR v_w < v_end THEN
        RETURN 'not rolled up yet: run refresh_rollups';
    END IF;
    IF EXISTS (SELECT 1 FROM rollup_invalidations i
                WHERE i.range_start < v_end AND i.range_end > v_start) THEN
        RETURN 'late points not rolled up yet';
    END IF;
    -- and what failed runs left for chunks dropped since (no run comes back for those)
    DELETE FROM points_compressed_staging s
     WHERE s.chunk_name = p_chunk
        OR NOT EXISTS (SELECT 1 FROM wh_chunks c WHERE c.chunk_name = s.chunk_name);
    RETURN NULL;
END
$$;

-- The encoder (either session): 0015's statement, into the staging table, for the chunk's
-- series from p_from up to p_to (NULL: no bound), so that the two sessions can share the
-- work. Refuses to run unless some transaction holds the chunk's EXCLUSIVE lock
-- (wh_compress_begin's): without it a writer could add rows the job would delete unencoded.
-- Returns the segments staged.
CREATE FUNCTION wh_compress_encode(p_chunk text, p_from integer DEFAULT NULL,
                                   p_to integer DEFAULT NULL, p_segment integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_segs bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'relation' AND l.database = (
                              SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.relation = to_regclass(quote_ident(p_chunk))
                      AND l.mode = 'ExclusiveLock' AND l.granted) THEN
        RAISE EXCEPTION 'wh_compress_encode(%): the chunk is not locked by a compress job', p_chunk;
    END IF;
    -- As 0015: the planner may sort the chunk (128 MB keeps a day of 100 series in memory);
    -- JIT doubled this statement's CPU.
    PERFORM set_config('work_mem', '128MB', true);
    PERFORM set_config('jit', 'off', true);
    EXECUTE format($q$
        INSERT INTO points_compressed_staging (chunk_name, series_id, ts_min, ts_max, n, min,
                                               max, sum, sum_sq, first_value, last_value,
                                               ts_step, ts_deltas, vals, vals_real, vals_int,
                                               vals_decimals, run_ids)
        SELECT %3$L, x.* FROM (
        SELECT g.series_id, g.ts[1], g.ts[g.n], g.n, st.lo, st.hi, st.total, st.total_sq,
               g.vals[1], g.vals[g.n], t.step,
               -- µs after the previous point (the first: 0); date_part's float8 seconds,
               -- rounded, are exact µs for any gap inside a chunk, at a third of extract's cost
               CASE WHEN t.step IS NULL THEN ARRAY(
                    SELECT coalesce(round(date_part('epoch', u.ts - lag(u.ts) OVER (ORDER BY u.o))
                                          * 1000000)::bigint, 0)
                      FROM unnest(g.ts) WITH ORDINALITY AS u(ts, o) ORDER BY u.o) END,
               CASE WHEN f.form = 'float8' THEN g.vals END,
               CASE WHEN f.form = 'real' THEN g.vals::real[] END,
               f.ints, f.decimals, g.runs
          FROM (SELECT p.series_id, least(%1$s, p.n - k * %1$s)::integer AS n,
                       p.t[k * %1$s + 1 : (k + 1) * %1$s] AS ts,
                       p.v[k * %1$s + 1 : (k + 1) * %1$s] AS vals,
                       CASE WHEN p.has_runs THEN p.r[k * %1$s + 1 : (k + 1) * %1$s] END AS runs
                  FROM (SELECT series_id, count(*) AS n, count(run_id) > 0 AS has_runs,
                               array_agg(ts) AS t, array_agg(value) AS v, array_agg(run_id) AS r
                          FROM (SELECT series_id, ts, value, run_id FROM %2$I
                                 WHERE series_id >= $1 AND series_id < $2
                                 ORDER BY series_id, ts) sorted
                         GROUP BY series_id) p
                 CROSS JOIN LATERAL generate_series(0, (p.n - 1) / %1$s) AS k
                OFFSET 0) g  -- OFFSET 0: slice once, not once per reference
         CROSS JOIN LATERAL (
               SELECT min(x) AS lo, max(x) AS hi, sum(x) AS total, sum(x * x) AS total_sq,
                      count(*) FILTER (WHERE x = 0 AND float8send(x) <> float8send(0)) > 0
                          AS negative_zero
                 FROM (SELECT unnest(g.vals) AS x) u) st
         CROSS JOIN LATERAL (
               -- a step only if the segment is exactly the series it generates: decoding
               -- adds µs (no days), so the session's time zone plays no part
               SELECT CASE WHEN g.n = 1 THEN 0
                           WHEN span.us > 0 AND span.us %% (g.n - 1) = 0
                                AND g.ts = ARRAY(SELECT generate_series(
                                    g.ts[1], g.ts[g.n],
                                    (span.us / (g.n - 1)) * interval '1 microsecond'))
                           THEN span.us / (g.n - 1) END AS step
                 FROM (SELECT round(date_part('epoch', g.ts[g.n] - g.ts[1]) * 1000000)::bigint
                              AS us) span
               OFFSET 0) t  -- OFFSET 0 here and below: evaluated once, not per reference
         CROSS JOIN LATERAL (
               -- Nested CASEs fix the order of evaluation: each guard keeps its cast from
               -- raising (out of range, NaN, underflow). float8's = takes -0.0 for 0, which
               -- an integer would turn into 0; the decimal check compares bits instead.
               -- OFFSET 0 in each layer: one cast per segment, not one per reference.
               SELECT CASE WHEN i.decimals IS NOT NULL THEN 'int'
                           WHEN NOT (st.lo >= float8 '-3.4e38' AND st.hi <= float8 '3.4e38'
                                     AND coalesce((SELECT min(abs(x)) FROM unnest(g.vals) AS x
                                                    WHERE x <> 0) >= float8 '1e-37', true))
                           THEN 'float8'
                           WHEN g.vals::real[]::double precision[] = g.vals THEN 'real'
                           ELSE 'float8' END AS form,
                      i.decimals,
                      CASE WHEN i.decimals = 0 THEN i.whole
                           WHEN i.decimals > 0 THEN ARRAY(
                                SELECT round(u.x * 10::double precision ^ i.decimals)::integer
                                  FROM unnest(g.vals) WITH ORDINALITY AS u(x, o) ORDER BY u.o)
                           END AS ints
                 FROM (SELECT w.whole, CASE
                         WHEN w.whole IS NULL THEN NULL
                         WHEN w.whole::double precision[] = g.vals THEN 0
                         -- the first of 1..3 decimals that gives every value back (any would do)
                         ELSE (SELECT s.decimals
                                 FROM (SELECT k, 10::double precision ^ k
                                         FROM generate_series(1, 3) k) AS s(decimals, scale)
                                WHERE CASE WHEN st.lo >= float8 '-2147483000' / s.scale
                                            AND st.hi <= float8 '2147483000' / s.scale
                                           THEN NOT EXISTS (
                                                SELECT FROM unnest(g.vals) AS x
                                                 WHERE float8send(round(x * s.scale) / s.scale)
                                                       <> float8send(x)) END
                                LIMIT 1) END AS decimals
                         FROM (SELECT CASE WHEN st.lo >= float8 '-2147483648'
                                            AND st.hi <= float8 '2147483647'
                                            AND NOT st.negative_zero
                                           THEN g.vals::integer[] END AS whole
                               OFFSET 0) w
                       OFFSET 0) i
               OFFSET 0) f
        ) x$q$, p_segment, p_chunk, p_chunk)
    -- bigint bounds, so that "no bound" lies outside every integer series id
    USING coalesce(p_from::bigint, -2147483648), coalesce(p_to::bigint, 2147483648);
    GET DIAGNOSTICS v_segs = ROW_COUNT;
    RETURN v_segs;
END
$$;

-- The job's transaction, beside the encoder: empty the chunk (0015's DELETE, which older
-- snapshots read through). Returns the rows deleted.
CREATE FUNCTION wh_compress_empty(p_chunk text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    EXECUTE format('DELETE FROM %I', p_chunk);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- The job's transaction, last: move the chunk's staged segments into points_compressed.
-- Fails when a segment's times do not ascend (0012's check) or when the segments do not hold
-- the p_deleted points the DELETE removed. Returns (rows encoded, segments, NULL), as
-- wh_compress_chunk.
CREATE FUNCTION wh_compress_publish(p_chunk text, p_deleted bigint)
RETURNS TABLE (rows_compressed bigint, segments bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_rows  bigint;
    v_segs  bigint;
    v_ordered boolean;
BEGIN
    WITH written AS (
        INSERT INTO points_compressed (series_id, ts_min, ts_max, n, min, max, sum, sum_sq,
                                       first_value, last_value, ts_step, ts_deltas, vals,
                                       vals_real, vals_int, vals_decimals, run_ids)
        SELECT series_id, ts_min, ts_max, n, min, max, sum, sum_sq, first_value, last_value,
               ts_step, ts_deltas, vals, vals_real, vals_int, vals_decimals, run_ids
          FROM points_compressed_staging WHERE chunk_name = p_chunk
         -- in key order, as one session's encoder wrote them: the two sessions' rows lie
         -- interleaved in the staging heap, and inserted so the primary key splits pages
         -- and keeps them half full
         ORDER BY series_id, ts_min
        RETURNING n, ts_step IS NOT NULL OR 0 < ALL (ts_deltas[2:]) AS ascending)
    SELECT count(*), coalesce(sum(n), 0), coalesce(bool_and(ascending), true)
      INTO v_segs, v_rows, v_ordered FROM written;
    IF NOT v_ordered THEN
        RAISE EXCEPTION 'wh_compress_publish(%): rows did not reach the arrays in time order', p_chunk;
    END IF;
    IF v_rows <> p_deleted THEN
        RAISE EXCEPTION 'wh_compress_publish(%): % points staged, % deleted', p_chunk, v_rows, p_deleted;
    END IF;
    DELETE FROM points_compressed_staging WHERE chunk_name = p_chunk;
    RETURN QUERY SELECT v_rows, v_segs, NULL::text;
END
$$;
