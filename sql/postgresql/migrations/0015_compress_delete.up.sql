-- 0015 up: compressing a chunk empties it with DELETE, not TRUNCATE, under an EXCLUSIVE lock
-- (writers wait, readers do not). TRUNCATE is not MVCC-safe: a REPEATABLE READ read whose
-- snapshot was taken before the job committed, and which reached the chunk after it (every
-- warehouse read on PostgreSQL is one such snapshot), saw neither the rows nor the new
-- segments and answered nothing for that day (review, tests/storage/
-- test_review_s4_compression.py). With DELETE an older snapshot still sees the rows and not
-- the segments; a newer one the segments and not the rows. The job then vacuums the chunk
-- and rebuilds its index outside the transaction (warehouse/jobs/compress.py), so the space
-- comes back as before. The body is 0012's but for those two statements.
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
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', p_chunk);
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
    EXECUTE format('DELETE FROM %I', p_chunk);
    RETURN QUERY SELECT v_rows, v_segs, NULL::text;
END
$$;

-- Also: 0014's slice cast the count of steps up to a bound to integer before capping it at
-- the segment's length, so a bound far from a fine segment (1 ms steps, a month away) raised
-- 'integer out of range' (review; the caller clips its end too, archive_read.points_relation).
-- Capped first, then cast.
CREATE OR REPLACE FUNCTION wh_regular_segment_points(p_first timestamptz, p_step bigint,
                                          p_vals double precision[], p_vals_real real[],
                                          p_vals_int integer[], p_decimals smallint,
                                          p_runs uuid[], p_from timestamptz, p_to timestamptz)
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT u.t,
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM (SELECT CASE WHEN p_from IS NULL OR p_from <= p_first THEN 0
                        ELSE least(k.n, ceil(round(date_part('epoch', p_from - p_first) * 1000000)
                                             / greatest(p_step, 1)))::integer END AS lo,
                   CASE WHEN p_to IS NULL THEN k.n
                        WHEN p_to <= p_first THEN 0
                        WHEN p_step = 0 THEN 1  -- one point, at p_first
                        ELSE least(k.n, ceil(round(date_part('epoch', p_to - p_first) * 1000000)
                                             / p_step))::integer END AS hi
              FROM (SELECT coalesce(cardinality(p_vals), cardinality(p_vals_real),
                                    cardinality(p_vals_int)) AS n) k) b,
           -- points lo .. hi - 1 (0-based); an empty range gives no rows
           ROWS FROM (
               generate_series(p_first + (b.lo * p_step) * interval '1 microsecond',
                               p_first + ((b.hi - 1) * p_step) * interval '1 microsecond',
                               greatest(p_step, 1) * interval '1 microsecond'),
               unnest(coalesce(p_vals[b.lo + 1 : b.hi],
                               p_vals_real[b.lo + 1 : b.hi]::double precision[],
                               p_vals_int[b.lo + 1 : b.hi]::double precision[])),
               unnest(p_runs[b.lo + 1 : b.hi])) AS u(t, v, r)
$$;
