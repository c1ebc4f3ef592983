-- wh.frame: the bucket of {column}: date_bin is integer arithmetic in C and exact before
-- the origin too ({origin} µs since the Unix epoch is 2000-01-03, Backend's origin).
date_bin('{every} microseconds', {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')
