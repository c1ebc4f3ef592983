-- wh.frame from a rollup tier (warehouse/query/tiers.py tier_partials): µs since the Unix
-- epoch of the bucket start {column}.
epoch_us({column})
