-- The newest point of each series of :metrics (a list) whose newest point is at or after
-- :since: the series a write touched when its change could not carry their ids (a big
-- write heard by NOTIFY), for the threshold rules with agg=last. Labels as JSON text (see
-- series_last_by_id). Result: series_id, metric, labels, ts, value.
SELECT s.series_id AS series_id, s.metric AS metric, CAST(s.labels AS VARCHAR) AS labels,
       l.ts AS ts, l.value AS value
FROM series_last AS l
JOIN series AS s ON s.series_id = l.series_id
WHERE l.ts >= :since AND s.metric = ANY(CAST(:metrics AS VARCHAR[]))
