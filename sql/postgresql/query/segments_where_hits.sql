-- wh.frame where= over compressed segments (PostgreSQL), for warehouse/query/frame_where.py
-- _decoded_range: wide rows (t, grp, v0..vN), the readings of a label set's metrics at the
-- instants where metric {k} {op} :where_value, in no order (frame_where.sorted_readings
-- sorts them; no sort here, which spilled past work_mem); t in µs since the epoch, fetched
-- faster than a timestamptz (with the sort: high-cpu-all 482 -> 461 ms, same process).
--
-- hs: the regular segments of the filtered series ({hit_ids}) in the range that may hold a
-- hit by their stored minimum and maximum ({may_hit}), with their group and the group's
-- series, one per metric ({hit_groups}: hit series id, group, ARRAY[id of metric 0, ...],
-- NULL where the group has none; a NULL array where a group holds two series of a metric).
-- Such a segment is aligned when every series of its group has a regular segment with the
-- same first instant and step, at least as long: a reading of the hit's instant is then at
-- the same position (TSBS writes a host's fields at the same instants). An aligned segment's
-- rows are its positions within the range ({first} to {last}: no instant computed and
-- compared per position), kept where metric {k} passes, each metric's reading a subscript
-- of its segment's array ({members}: each
-- detoasted once, in memory; {decoded}): no join, sort or aggregate. TSBS high-cpu-all
-- compressed, same process: 2.1 s -> ~0.45 s (statement ~0.19 s, fetching 44,866 rows
-- ~0.15 s); the general way below joined the hits to every segment of their group (3.6M
-- pairs) and sorted and aggregated 448,660 readings twice, spilling past work_mem.
--
-- Every other hit (in hot points: a late write decodes the segments it overlaps back into
-- points, per series; in irregular segments; in a segment not aligned) goes the general
-- way: h, the hits; r, the readings of the frame's series ({ids}) at those instants only
-- (each regular segment detoasted once and indexed at the hits' positions; irregular ones
-- decoded whole within the hits' range; {hot} read over {where}); joined to the hits and
-- pivoted ({columns} over {pairs}: unnest of arrays of (series id, group, metric code),
-- which the planner takes faster than a VALUES list of 1,000 rows: high-cpu-all ~33 -> ~23 ms).
WITH hs AS MATERIALIZED (
    SELECT c.series_id, gs.gs_grp AS grp, gs.gs_ids AS ids, c.ts_min, c.ts_step, c.n,
           wh_epoch_us(c.ts_min) AS us_min,
           gs.gs_ids IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM unnest(gs.gs_ids) AS w(id)
                WHERE w.id IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM points_compressed m
                       WHERE m.series_id = w.id AND m.ts_min = c.ts_min
                         AND m.ts_step = c.ts_step AND m.n >= c.n)) AS aligned
      FROM points_compressed c
      JOIN (VALUES {hit_groups}) AS gs(gs_series_id, gs_grp, gs_ids)
        ON gs.gs_series_id = c.series_id
     WHERE c.series_id IN ({hit_ids}) AND c.ts_step IS NOT NULL{segment_bounds}
       AND {may_hit}),
h AS MATERIALIZED (
    SELECT points.ts AS h_ts, g.g_grp AS h_grp
      FROM {hot} JOIN {pairs} AS g(g_series_id, g_grp, g_m) ON g.g_series_id = points.series_id
     WHERE {hit_where} AND points.value {op} :where_value
    UNION ALL
    SELECT points.ts, g.g_grp
      FROM (SELECT s.ts, c.series_id, s.value
              FROM points_compressed c
             CROSS JOIN LATERAL wh_irregular_segment_points(c.ts_min, c.ts_deltas, c.vals,
                                                            c.vals_real, c.vals_int,
                                                            c.vals_decimals, c.run_ids) s
             WHERE c.series_id IN ({hit_ids}) AND c.ts_step IS NULL{segment_bounds}) AS points
      JOIN {pairs} AS g(g_series_id, g_grp, g_m) ON g.g_series_id = points.series_id
     WHERE {hit_where} AND points.value {op} :where_value
    UNION ALL
    SELECT points.ts, hs.grp
      FROM hs CROSS JOIN LATERAL (
           SELECT hs.ts_min + ((u.o - 1) * c.ts_step) * INTERVAL '1 microsecond' AS ts,
                  CASE WHEN c.vals_decimals > 0 THEN u.v / 10::double precision ^ c.vals_decimals
                       ELSE u.v END AS value
             FROM points_compressed c
            CROSS JOIN LATERAL unnest(coalesce(c.vals[1 : c.n],
                                               c.vals_real[1 : c.n]::double precision[],
                                               c.vals_int[1 : c.n]::double precision[]))
                  WITH ORDINALITY AS u(v, o)
            WHERE c.series_id = hs.series_id AND c.ts_min = hs.ts_min) AS points
     WHERE NOT hs.aligned AND {bounds} AND points.value {op} :where_value),
r AS MATERIALIZED (
    SELECT points.ts AS r_ts, points.series_id AS r_series_id, points.value
      FROM {hot} WHERE {where}
    UNION ALL
    SELECT c.ts_min + ((x.o - 1) * c.ts_step) * INTERVAL '1 microsecond', c.series_id,
           CASE WHEN c.vals_decimals > 0 THEN x.v / 10::double precision ^ c.vals_decimals
                ELSE x.v END
      FROM (SELECT c.series_id, c.ts_min,
                   array_agg(DISTINCT (round(date_part('epoch', w.h_ts - c.ts_min) * 1000000)
                                       ::bigint / greatest(c.ts_step, 1) + 1)::integer) AS pos
              FROM (SELECT g.g_series_id AS w_series_id, h.h_ts
                      FROM h JOIN {pairs} AS g(g_series_id, g_grp, g_m)
                                  ON g.g_grp = h.h_grp) w
              JOIN points_compressed c
                ON c.series_id = w.w_series_id AND c.ts_min <= w.h_ts AND c.ts_max >= w.h_ts
             WHERE c.series_id IN ({ids}) AND c.ts_step IS NOT NULL
               AND round(date_part('epoch', w.h_ts - c.ts_min) * 1000000)::bigint
                   % greatest(c.ts_step, 1) = 0
             GROUP BY c.series_id, c.ts_min) k
      JOIN points_compressed c ON c.series_id = k.series_id AND c.ts_min = k.ts_min
     CROSS JOIN LATERAL (
           SELECT coalesce(c.vals[1 : c.n], c.vals_real[1 : c.n]::double precision[],
                           c.vals_int[1 : c.n]::double precision[]) AS arr
           OFFSET 0) a
     CROSS JOIN LATERAL (SELECT p.o, a.arr[p.o] AS v FROM unnest(k.pos) AS p(o)) x
    UNION ALL
    SELECT s.ts, c.series_id, s.value
      FROM points_compressed c
     CROSS JOIN LATERAL wh_irregular_segment_points(c.ts_min, c.ts_deltas, c.vals,
                                                    c.vals_real, c.vals_int,
                                                    c.vals_decimals, c.run_ids) s
     WHERE c.series_id IN ({ids}) AND c.ts_step IS NULL
       AND c.ts_max >= (SELECT min(h_ts) FROM h) AND c.ts_min <= (SELECT max(h_ts) FROM h))
SELECT points.t, points.grp, {values}
  FROM (SELECT hs.us_min + (u.o - 1) * hs.ts_step AS t, hs.grp, {decoded}
          FROM hs CROSS JOIN LATERAL (SELECT {members} OFFSET 0) AS m
         CROSS JOIN LATERAL generate_series({first}, {last}) AS u(o)
         WHERE hs.aligned) AS points
 WHERE points.v{k} {op} :where_value
UNION ALL
SELECT wh_epoch_us(h.h_ts), h.h_grp, {columns}
  FROM h
  JOIN {pairs} AS g(g_series_id, g_grp, g_m) ON g.g_grp = h.h_grp
  JOIN r AS points ON points.r_series_id = g.g_series_id AND points.r_ts = h.h_ts
 GROUP BY 1, 2
