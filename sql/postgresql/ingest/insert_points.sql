-- Insert the staged batch (temporary table _stage_points LIKE points) skipping keys already
-- stored. Used when the batch may meet stored keys (series_last says a series' first point
-- is not newer than its newest stored one) or the direct COPY met a duplicate key.
-- Binds :lo and :hi (the batch's first and last ts) confine the anti-join to the chunks of
-- the batch; it keeps only new keys, so the speculative insertion of ON CONFLICT (which
-- still guards against a concurrent writer of the same keys) runs for new rows only.
INSERT INTO points (ts, series_id, value, run_id)
SELECT s.ts, s.series_id, s.value, s.run_id
  FROM _stage_points AS s
 WHERE NOT EXISTS (SELECT 1 FROM points AS p
                    WHERE p.ts >= :lo AND p.ts <= :hi
                      AND p.series_id = s.series_id AND p.ts = s.ts)
ON CONFLICT (series_id, ts) DO NOTHING
