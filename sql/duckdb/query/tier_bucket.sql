-- Rollup reads (warehouse/query/tiers.py): the start of the bucket of {column}, a TIMESTAMPTZ,
-- {every} µs wide, counted from the warehouse's origin (2000-01-03, Backend's). A width in
-- microseconds only is integer arithmetic from the origin, exact before it too and whatever
-- the session's TimeZone (tests/storage/test_jobs_rollups.py compares it with raw buckets).
time_bucket(INTERVAL '{every} microseconds', {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')
