-- Move series_last forward to the newest point of each series in a batch.
-- Expects a relation _stage_series_last(series_id INTEGER, ts TIMESTAMPTZ, value DOUBLE).
INSERT INTO series_last (series_id, ts, value)
SELECT series_id, ts, value FROM _stage_series_last
ON CONFLICT (series_id) DO UPDATE SET ts = excluded.ts, value = excluded.value
WHERE excluded.ts > series_last.ts
