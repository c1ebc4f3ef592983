-- 0013 faster reads of compressed segments (issue 15; docs/jobs.md "Compression").
--
-- A regular segment (ts_step set: every gap the same, as TSBS's and a scraper's) decodes its
-- times with generate_series zipped with the values (ROWS FROM), instead of computing
-- first + (o - 1) * step from an ordinality for every point: one timestamp addition a point
-- in C instead of a multiplication, a float8 interval product and an addition in the
-- executor. Irregular segments decode as in 0012. Same signature, so every caller (raw
-- reads, all_points, late-write decode, archive extraction) changes with it.
--
-- Raw reads (warehouse/query/archive_read.points_relation) decode through the two functions
-- below instead, one branch per timestamp form, so that a decode of many segments can be
-- split over parallel workers: wh_segment_points' body is a UNION ALL (and its irregular
-- branch a window), which the planner keeps as a subquery whose references to the segment
-- row are executor parameters, and those rule out any parallel plan for the whole statement
-- (TSBS double-groupby-all stayed serial). A single SELECT with no window is flattened into
-- the caller's query, so its function scans read the segment's columns directly.
--
-- points_compressed keeps its bytes in TOAST: its heap is ~1 MB for 9,000 segments, under
-- min_parallel_table_scan_size, so the planner never considered workers for it at all. The
-- parallel_workers setting lets a scan of many segments (every host, hours) use two.
CREATE OR REPLACE FUNCTION wh_segment_points(p_first timestamptz, p_step bigint,
                                             p_deltas bigint[], p_vals double precision[],
                                             p_vals_real real[], p_vals_int integer[],
                                             p_decimals smallint, p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- the division is the encoder's own check (wh_compress_chunk), so it gives back each
    -- value exactly; a one-point segment has step 0 (generate_series needs a step: 1 µs)
    SELECT u.t,
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM ROWS FROM (
               generate_series(p_first,
                               p_first + ((coalesce(cardinality(p_vals), cardinality(p_vals_real),
                                                    cardinality(p_vals_int)) - 1) * p_step)
                                         * interval '1 microsecond',
                               greatest(p_step, 1) * interval '1 microsecond'),
               unnest(coalesce(p_vals, p_vals_real::double precision[],
                               p_vals_int::double precision[])),
               unnest(p_runs)) AS u(t, v, r)
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

-- The points of a regular segment (ts_step set), as wh_segment_points' first branch.
CREATE FUNCTION wh_regular_segment_points(p_first timestamptz, p_step bigint,
                                          p_vals double precision[], p_vals_real real[],
                                          p_vals_int integer[], p_decimals smallint,
                                          p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT u.t,
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM ROWS FROM (
               generate_series(p_first,
                               p_first + ((coalesce(cardinality(p_vals), cardinality(p_vals_real),
                                                    cardinality(p_vals_int)) - 1) * p_step)
                                         * interval '1 microsecond',
                               greatest(p_step, 1) * interval '1 microsecond'),
               unnest(coalesce(p_vals, p_vals_real::double precision[],
                               p_vals_int::double precision[])),
               unnest(p_runs)) AS u(t, v, r)
$$;

-- The points of an irregular segment (ts_deltas set). PL/pgSQL on purpose: it is not
-- inlined, so the caller's plan sees a plain function scan that may run in a parallel
-- worker (an inlined window would be a parameterised subquery, see above). Measured on TSBS
-- segments rewritten as deltas (5,000 segments, 4.3M points, serial): 5.1 s against 5.3 s
-- inlined, the running sum dominates either way.
CREATE FUNCTION wh_irregular_segment_points(p_first timestamptz, p_deltas bigint[],
                                            p_vals double precision[], p_vals_real real[],
                                            p_vals_int integer[], p_decimals smallint,
                                            p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN QUERY
    SELECT p_first + (sum(u.d) OVER (ORDER BY u.o)) * interval '1 microsecond',
           CASE WHEN p_decimals > 0 THEN u.v / 10::double precision ^ p_decimals ELSE u.v END,
           u.r
      FROM unnest(p_deltas, coalesce(p_vals, p_vals_real::double precision[],
                                     p_vals_int::double precision[]), p_runs)
           WITH ORDINALITY AS u(d, v, r, o);
END
$$;

ALTER TABLE points_compressed SET (parallel_workers = 2);
