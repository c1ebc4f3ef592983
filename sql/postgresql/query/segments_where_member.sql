-- For sql/postgresql/query/segments_where_hits.sql: the values of the segment of the group's
-- series of metric {i} (hs.ids[{i} + 1]) aligned with hit segment hs (same first instant and
-- step, at least as long), as float8, and their decimals; NULL where the group has no such
-- series (a subscript of NULL is NULL). Scalar subqueries, planned one by one: as ten LATERAL
-- joins the planner searched their join orders (high-cpu-1: 13 -> ~6 ms of planning). The
-- array is a copy in memory (the cast, or the slice of the float8 form), detoasted once:
-- each subscript of the column itself would detoast it again. No slice where the cast
-- copies anyway (800 segments: detoast 7 ms, slice +9, cast +14).
(SELECT coalesce(m.vals[1 : m.n], m.vals_real::double precision[],
                 m.vals_int::double precision[])
   FROM points_compressed m
  WHERE m.series_id = hs.ids[{i} + 1] AND m.ts_min = hs.ts_min
    AND m.ts_step = hs.ts_step AND m.n >= hs.n) AS arr{i},
(SELECT m.vals_decimals
   FROM points_compressed m
  WHERE m.series_id = hs.ids[{i} + 1] AND m.ts_min = hs.ts_min
    AND m.ts_step = hs.ts_step AND m.n >= hs.n) AS decimals{i}
