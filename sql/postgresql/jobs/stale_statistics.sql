-- Whether the planner's statistics of a partitioned table (:t) are missing or stale.
-- Autovacuum analyses partitions but never their partitioned parent, so a parent has no
-- statistics (reltuples -1) until someone runs ANALYZE on it: every plan over the parent
-- then guesses its row counts. Stale = the partitions' live rows moved more than 20% (and
-- 10,000 rows) away from what the parent's last ANALYZE counted.
SELECT c.reltuples < 0
       OR abs(live.n - c.reltuples) > greatest(0.2 * c.reltuples, 10000)
FROM pg_class AS c
CROSS JOIN LATERAL (
    SELECT coalesce(sum(s.n_live_tup), 0) AS n
    FROM pg_partition_tree(c.oid) AS t
    JOIN pg_stat_user_tables AS s ON s.relid = t.relid
) AS live
WHERE c.oid = CAST(:t AS regclass)
