-- Ingest: record that series :series_id got points in [:range_start, :range_end) (whole
-- minutes) below the points_1m watermark, in the same transaction as the points.
INSERT INTO rollup_invalidations (series_id, range_start, range_end)
VALUES (:series_id, :range_start, :range_end)
