-- Insert the staged batch (temporary table _stage_points LIKE points) skipping keys already
-- stored. Used when the direct COPY into points met a duplicate key.
INSERT INTO points (ts, series_id, value, run_id)
SELECT ts, series_id, value, run_id FROM _stage_points
ON CONFLICT (series_id, ts) DO NOTHING
