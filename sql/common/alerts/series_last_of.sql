-- The newest point of every series of :metrics (a list) whose newest point lies in
-- [:start, :end]: what threshold rules with agg=last read (series_last is kept by ingest,
-- so this is one row per series instead of every point of the window).
-- Result: metric, series_id, labels, ts, value.
SELECT s.metric AS metric, s.series_id AS series_id, s.labels AS labels, l.ts AS ts,
       l.value AS value
FROM series AS s
JOIN series_last AS l ON l.series_id = s.series_id
WHERE s.metric IN (SELECT unnest(CAST(:metrics AS VARCHAR[])))
  AND l.ts >= :start AND l.ts <= :end
