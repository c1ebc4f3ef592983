-- wh.frame where=: a condition on the per-reading probe that keeps its scan to the frame's
-- series ({ids}). DuckDB decorrelates the LATERAL probe into one hash join whose scan would
-- otherwise read every series of the time range; with chunks sorted by series (the compress
-- job) zone maps then skip the other series' row groups (TSBS high-cpu-1 after the
-- compress job: docs/tsbs.md, "Session 3").
 AND points.series_id IN ({ids})
