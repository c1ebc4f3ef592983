-- The newest point of each of the series :series_ids (a list): what a write just changed,
-- for the threshold rules with agg=last that it touches (one row per series, from
-- series_last, whatever the number of rules). Labels come as JSON text: the caller parses
-- each series' labels once and keeps them. (= ANY: ~15% faster than IN (unnest) for
-- 4,000 ids on DuckDB.) Result: series_id, metric, labels, ts, value.
SELECT s.series_id AS series_id, s.metric AS metric, CAST(s.labels AS VARCHAR) AS labels,
       l.ts AS ts,
       l.value AS value
FROM series_last AS l
JOIN series AS s ON s.series_id = l.series_id
WHERE l.series_id = ANY(CAST(:series_ids AS INTEGER[]))
