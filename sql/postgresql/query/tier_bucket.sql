-- Rollup reads (warehouse/query/tiers.py): the start of the bucket of {column}, a timestamptz,
-- {every} µs wide, counted from the warehouse's origin (2000-01-03, Backend's): date_bin is
-- integer arithmetic in C, exact before the origin too.
date_bin('{every} microseconds', {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')
