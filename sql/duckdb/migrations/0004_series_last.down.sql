-- 0004 down: series_latest goes back to searching points (its 0002 definition), and
-- series_last is dropped.
DROP VIEW IF EXISTS series_latest;
DROP TABLE IF EXISTS series_last;

-- series_latest: the last point of every series.
-- Columns: series_id, metric, labels, ts, value.
CREATE OR REPLACE VIEW series_latest AS
SELECT s.series_id, s.metric, s.labels, l.ts, l.value
FROM series AS s
JOIN (SELECT series_id, max(ts) AS ts, arg_max(value, ts) AS value
        FROM points GROUP BY series_id) AS l ON l.series_id = s.series_id;
