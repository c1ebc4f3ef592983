-- warehouse info: points hot and compressed, rows and bytes (heap, indexes and TOAST).
SELECT (SELECT count(*) FROM points) AS hot_rows,
       (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)
          FROM pg_partition_tree('points'))::bigint AS hot_bytes,
       (SELECT coalesce(sum(n), 0)::bigint FROM points_compressed) AS compressed_rows,
       pg_total_relation_size('points_compressed') AS compressed_bytes,
       (SELECT count(*) FROM points_compressed) AS segments
