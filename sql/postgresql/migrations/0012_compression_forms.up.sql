-- 0012 narrower segment values and a one-sort encoder (issue 15; docs/jobs.md "Compression").
-- A segment's values take the narrowest form that gives every value back bit for bit, chosen
-- per segment: vals_int integer[] when all are integers that fit (and none is -0.0, which an
-- integer cannot keep); else vals_int holding value * 10^vals_decimals for 1 to 3 decimals
-- (readings like 21.5 or 0.25: an integer column compresses far better than their float8
-- bits); else vals_real real[] when each survives float8 -> real -> float8; else vals
-- float8[] as before. Casting an array back to float8[] is one C loop, so decoding costs what
-- it did (plus one division a point for decimals). Segments written before stay float8[].
-- TOAST compression of the arrays goes from lz4 to pglz: on TSBS segments pglz keeps 1.1 bytes
-- a point of float8 values where lz4 keeps 2.3, and 0.93 of integers (lz4: 2.2).

ALTER TABLE points_compressed ALTER COLUMN vals DROP NOT NULL,
    ADD COLUMN vals_real real[],
    ADD COLUMN vals_int integer[],
    ADD COLUMN vals_decimals smallint CHECK (vals_decimals BETWEEN 0 AND 3),
    ADD CONSTRAINT points_compressed_one_value_form
        CHECK (num_nonnulls(vals, vals_real, vals_int) = 1
               AND (vals_int IS NULL) = (vals_decimals IS NULL));
ALTER TABLE points_compressed ALTER COLUMN ts_deltas SET COMPRESSION pglz,
    ALTER COLUMN vals SET COMPRESSION pglz,
    ALTER COLUMN vals_real SET COMPRESSION pglz,
    ALTER COLUMN vals_int SET COMPRESSION pglz,
    ALTER COLUMN run_ids SET COMPRESSION pglz;

-- The points of one segment, in time order, whatever the form of its values. SQL (not
-- PL/pgSQL) so the planner inlines it; only the branch of the segment's timestamps returns rows.
CREATE FUNCTION wh_segment_points(p_first timestamptz, p_step bigint, p_deltas bigint[],
                                  p_vals double precision[], p_vals_real real[],
                                  p_vals_int integer[], p_decimals smallint, p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- the division is the encoder's own check (wh_compress_chunk), so it gives back each
    -- value exactly
    SELECT p_first + ((u.o - 1) * p_step) * interval '1 microsecond',
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM unnest(coalesce(p_vals, p_vals_real::double precision[],
                           p_vals_int::double precision[]), p_runs) WITH ORDINALITY AS u(v, r, o)
     WHERE p_step IS NOT NULL
    UNION ALL
    SELECT p_first + (sum(u.d) OVER (ORDER BY u.o)) * interval '1 microsecond',
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM unnest(p_deltas, coalesce(p_vals, p_vals_real::double precision[],
                                     p_vals_int::double precision[]), p_runs)
           WITH ORDINALITY AS u(d, v, r, o)
     WHERE p_step IS NULL
$$;

CREATE OR REPLACE VIEW all_points AS
SELECT ts, series_id, value, run_id FROM points
UNION ALL
SELECT s.ts, c.series_id, s.value, s.run_id
  FROM points_compressed c
 CROSS JOIN LATERAL wh_segment_points(c.ts_min, c.ts_step, c.ts_deltas, c.vals, c.vals_real,
                                     c.vals_int, c.vals_decimals, c.run_ids) s;

-- Encode every hot row of one points chunk into segments and empty the partition, in the
-- caller's transaction: a crash leaves either the rows or the segments. Refuses (returns
-- NULL and a reason) a chunk whose rows the rollups do not cover yet, since the refresh
-- reads raw points. Returns (rows encoded, segments written, refused).
--
-- One sort of the chunk by (series_id, ts) feeds plain array_aggs, one row per series; the
-- arrays are cut into segments by slicing. (0010 numbered rows with a window and sorted each
-- segment's three ordered array_aggs again: three times the CPU.) An aggregate over a sorted
-- subquery gets its rows in that order in practice but not by contract, so each segment's
-- timestamps are checked to ascend (a regular segment equals the series generated from its
-- step; an irregular one has only positive deltas) and the chunk fails otherwise; the
-- aggregates of one row see the same rows in the same order, so values follow their times.
-- A series' points of one chunk are held in memory at once (~30 bytes a point).
CREATE OR REPLACE FUNCTION wh_compress_chunk(p_chunk text, p_segment integer DEFAULT 1000)
RETURNS TABLE (rows_compressed bigint, segments bigint, refused text)
LANGUAGE plpgsql AS $$
DECLARE
    v_start timestamptz;
    v_end   timestamptz;
    v_w     timestamptz;
    v_rows  bigint;
    v_segs  bigint;
    v_ordered boolean;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    -- Where the planner sorts the chunk instead of reading it in primary-key order, a day of
    -- 100 series (864,000 rows) spills to disk at the default 4 MB. JIT compiling this
    -- statement doubled its CPU (0.99 s against 0.45 s for such a chunk).
    PERFORM set_config('work_mem', '128MB', true);
    PERFORM set_config('jit', 'off', true);
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
                                       vals_real, vals_int, vals_decimals, run_ids)
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
        RETURNING n, ts_step IS NOT NULL OR 0 < ALL (ts_deltas[2:]) AS ascending)
        SELECT count(*), coalesce(sum(n), 0), coalesce(bool_and(ascending), true)
          FROM written$q$, p_segment, p_chunk)
    INTO v_segs, v_rows, v_ordered;
    IF NOT v_ordered THEN
        RAISE EXCEPTION 'wh_compress_chunk(%): rows did not reach the arrays in time order', p_chunk;
    END IF;
    EXECUTE format('TRUNCATE %I', p_chunk);
    RETURN QUERY SELECT v_rows, v_segs, NULL::text;
END
$$;

-- As in 0010, decoding through the new wh_segment_points.
CREATE OR REPLACE FUNCTION wh_decompress_for_write(p_series integer[], p_lo timestamptz[],
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
        RETURNING s.series_id, s.ts_min, s.ts_step, s.ts_deltas, s.vals, s.vals_real,
                  s.vals_int, s.vals_decimals, s.run_ids)
    INSERT INTO points (ts, series_id, value, run_id)
    SELECT p.ts, seg.series_id, p.value, p.run_id
      FROM seg CROSS JOIN LATERAL wh_segment_points(seg.ts_min, seg.ts_step, seg.ts_deltas,
                                                    seg.vals, seg.vals_real, seg.vals_int,
                                                    seg.vals_decimals, seg.run_ids) p;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

DROP FUNCTION wh_segment_points(timestamptz, bigint, bigint[], double precision[], uuid[]);
