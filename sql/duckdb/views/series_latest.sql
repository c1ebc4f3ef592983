-- series_latest: the last point of every series.
-- Columns: series_id, metric, labels, ts, value.
CREATE OR REPLACE VIEW series_latest AS
SELECT s.series_id, s.metric, s.labels, l.ts, l.value
FROM series AS s
JOIN (SELECT series_id, max(ts) AS ts, arg_max(value, ts) AS value
        FROM points GROUP BY series_id) AS l ON l.series_id = s.series_id
