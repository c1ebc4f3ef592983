-- warehouse info: points held in compressed segments, their bytes (heap, index and TOAST)
-- and the number of segments. (Hot points are counted with the other tables.)
SELECT (SELECT coalesce(sum(n), 0)::bigint FROM points_compressed) AS compressed_rows,
       pg_total_relation_size('points_compressed') AS compressed_bytes,
       (SELECT count(*) FROM points_compressed) AS segments
