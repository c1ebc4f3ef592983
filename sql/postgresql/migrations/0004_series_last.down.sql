-- 0004 down: series_latest goes back to searching points (its 0002 definition), and
-- series_last is dropped.
DROP VIEW IF EXISTS series_latest;
DROP TABLE IF EXISTS series_last;

-- series_latest: the last point of every series.
-- Columns: series_id, metric, labels, ts, value.
-- A LATERAL probe per series walks the (series_id, ts) primary key backwards: one index
-- lookup per series rather than a scan of every point.
CREATE OR REPLACE VIEW series_latest AS
SELECT s.series_id, s.metric, s.labels, l.ts, l.value
FROM series AS s
CROSS JOIN LATERAL (
    SELECT p.ts, p.value FROM points AS p
     WHERE p.series_id = s.series_id ORDER BY p.ts DESC LIMIT 1
) AS l;
