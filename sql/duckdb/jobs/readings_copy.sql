-- Job compress, DuckDB: the pivoted copy of one chunk range [start, end) (migration 0016):
-- one row per label set and instant, ordered by (entity, ts) so zone maps on entity skip
-- other label sets. {columns} is one `max(p.value) FILTER (WHERE c.col = N) AS mN` per
-- metric of the range (warehouse/jobs/readings.py: N are integers it read from
-- reading_columns). A metric has one series per label set, so max picks its one value.
-- Variables set by the runner: start, end; jobs/readings_mark.sql then lists the range.
-- Result: rows copied.
DELETE FROM readings WHERE ts >= getvariable('start') AND ts < getvariable('end');
INSERT INTO readings BY NAME
SELECT p.ts, e.entity, {columns}
  FROM points p
  JOIN _wh_range_series s ON s.series_id = p.series_id
  JOIN reading_entities e ON e.labels_key = s.labels_key
  JOIN reading_columns c ON c.metric = s.metric
 WHERE p.ts >= getvariable('start') AND p.ts < getvariable('end')
 GROUP BY p.ts, e.entity
 ORDER BY e.entity, p.ts;
DROP TABLE _wh_range_series;
SELECT count(*) FROM readings WHERE ts >= getvariable('start') AND ts < getvariable('end');
