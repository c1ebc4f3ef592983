-- Move series_last forward to the newest point of one series. Binds: :series_id, :ts, :value.
INSERT INTO series_last (series_id, ts, value) VALUES (:series_id, :ts, :value)
ON CONFLICT (series_id) DO UPDATE SET ts = excluded.ts, value = excluded.value
WHERE excluded.ts > series_last.ts
