-- Job retention, one unit: a whole chunk of :table (:metric '*') or one metric's rows of a
-- points chunk range [:start, :end). The body, with the archive invariant checked under
-- locks, is the function wh_retention_drop (sql/postgresql/migrations/0003_jobs.up.sql).
-- Parameters: :table, :start, :end, :metric, :archive (the policy archives), :now.
-- Result: one row (removed, refused): rows removed, or 0 and why it refused.
SELECT removed, refused
  FROM wh_retention_drop(CAST(:table AS text), CAST(:start AS timestamptz),
                         CAST(:end AS timestamptz), CAST(:metric AS text),
                         CAST(:archive AS boolean), CAST(:now AS timestamptz))
