-- wh.frame rollup reads (warehouse/query/tiers.py tier_partials): the series of the raw
-- points that complete a tier (edges, tail, stale buckets), listed ({ids}): PostgreSQL then
-- probes the (series_id, ts) key once per id for the thin slice of time, where a BETWEEN of
-- every id made it scan the whole chunk once per slice (TSBS double-groupby-all, same
-- process, load 4.2: 1,321 -> 488 ms).
series_id IN ({ids})
