-- 0004: series_last keeps the newest point of every series, maintained by ingest in the
-- same transaction as the points, so series_latest (and TSBS "lastpoint") reads one row per
-- series instead of searching all points. Rows that other SQL clients insert straight into
-- points are not reflected until the next warehouse write of that series.
CREATE TABLE series_last (
    series_id INTEGER PRIMARY KEY,
    ts        TIMESTAMPTZ NOT NULL,
    value     DOUBLE PRECISION NOT NULL
);
INSERT INTO series_last (series_id, ts, value)
SELECT series_id, max(ts), arg_max(value, ts) FROM points GROUP BY series_id;
DROP VIEW IF EXISTS series_latest;
-- series_latest: the last point of every series. Columns: series_id, metric, labels, ts, value.
CREATE VIEW series_latest AS
SELECT s.series_id, s.metric, s.labels, l.ts, l.value
FROM series AS s
JOIN series_last AS l ON l.series_id = s.series_id;
