-- Insert a staged batch of points, skipping (series_id, ts) keys already stored.
-- Expects a relation _stage_points(ts TIMESTAMPTZ, series_id INTEGER, value DOUBLE, run_id VARCHAR)
-- without duplicate keys. Binds :lo and :hi (the batch's first and last ts) confine the
-- anti-join to the batch's time range, which zone maps on points.ts prune cheaply.
INSERT INTO points (ts, series_id, value, run_id)
SELECT b.ts, b.series_id, b.value, CAST(b.run_id AS UUID)
FROM _stage_points AS b
ANTI JOIN (
    SELECT series_id, ts FROM points WHERE ts >= :lo AND ts <= :hi
) AS p ON p.series_id = b.series_id AND p.ts = b.ts
