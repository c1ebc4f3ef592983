-- wh.frame where= over compressed segments (PostgreSQL), for warehouse/query/frame_where.py
-- _decoded_range (which another change wires in): the hits first ({source}: every raw
-- point, segments decoded), then the readings of the frame's series ({ids}) at the hit
-- instants only. The hits are matched to the regular segments of their group's series by
-- a join (a subquery per segment scanning every hit was O(segments x hits): TSBS
-- high-cpu-all slower than before); each such segment is detoasted once (an in-memory copy:
-- OFFSET 0 keeps it from being re-read per element) and indexed at its hits' positions,
-- instead of decoding every reading of the range to hash-join them with the hits (TSBS
-- high-cpu-1 compressed: 43,200 readings decoded for 5,560 used). Same process, same
-- answers, load 7-8: high-cpu-1 55.9 -> 31.1 ms, high-cpu-all 9.4-10.5 -> 3.4-4.0 s.
-- Irregular segments are decoded whole within the hits' time range. {hot}: the relation
-- without segments (hot table, archived files), read over the frame's own conditions
-- ({where}). Placeholders: source, mapping, hit_where, op, hot, where, ids, columns, pairs.
WITH h AS MATERIALIZED (
    SELECT points.ts AS h_ts, g.g_grp AS h_grp
      FROM {source} {mapping}
     WHERE {hit_where} AND points.value {op} :where_value),
r AS MATERIALIZED (
    SELECT points.ts AS r_ts, points.series_id AS r_series_id, points.value
      FROM {hot} WHERE {where}
    UNION ALL
    SELECT c.ts_min + ((x.o - 1) * c.ts_step) * INTERVAL '1 microsecond', c.series_id,
           CASE WHEN c.vals_decimals > 0 THEN x.v / 10::double precision ^ c.vals_decimals
                ELSE x.v END
      -- per regular segment, the 1-based positions of its points at hit instants of its
      -- series' group (a hit between two points has no reading there), once each
      FROM (SELECT c.series_id, c.ts_min,
                   array_agg(DISTINCT (round(date_part('epoch', w.h_ts - c.ts_min) * 1000000)
                                       ::bigint / greatest(c.ts_step, 1) + 1)::integer) AS pos
              FROM (SELECT g.g_series_id AS w_series_id, h.h_ts
                      FROM h JOIN (VALUES {pairs}) AS g(g_series_id, g_grp, g_m)
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
SELECT h.h_ts AS t, h.h_grp AS grp, {columns}
  FROM h
  JOIN (VALUES {pairs}) AS g(g_series_id, g_grp, g_m) ON g.g_grp = h.h_grp
  JOIN r AS points ON points.r_series_id = g.g_series_id AND points.r_ts = h.h_ts
 GROUP BY 1, 2
