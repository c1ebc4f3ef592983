-- 0013 down: wh_segment_points as 0012 defined it, without the per-form functions, and the
-- planner's own worker count.
DROP FUNCTION wh_regular_segment_points(timestamptz, bigint, double precision[], real[],
                                        integer[], smallint, uuid[]);
DROP FUNCTION wh_irregular_segment_points(timestamptz, bigint[], double precision[], real[],
                                          integer[], smallint, uuid[]);
CREATE OR REPLACE FUNCTION wh_segment_points(p_first timestamptz, p_step bigint,
                                             p_deltas bigint[], p_vals double precision[],
                                             p_vals_real real[], p_vals_int integer[],
                                             p_decimals smallint, p_runs uuid[])
RETURNS TABLE (ts timestamptz, value double precision, run_id uuid)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
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

ALTER TABLE points_compressed RESET (parallel_workers);
