-- 0014 down: wh_regular_segment_points as 0013 created it (every point of the segment).
DROP FUNCTION wh_regular_segment_points(timestamptz, bigint, double precision[], real[],
                                        integer[], smallint, uuid[], timestamptz,
                                        timestamptz);

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
