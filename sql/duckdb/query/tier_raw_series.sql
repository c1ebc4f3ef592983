-- wh.frame rollup reads (warehouse/query/tiers.py tier_partials): the series of the raw
-- points that complete a tier (edges, tail, stale buckets), as the frame chooses them
-- ({ranges}: BETWEEN for long runs of ids). DuckDB finds the rows of a thin slice of time
-- by its zone maps on ts; a list of a thousand ids became a join costing more than the
-- range test (TSBS double-groupby-all, same process, load 4.1: CPU 42 -> 30 ms).
{ranges}
