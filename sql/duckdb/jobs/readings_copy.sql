-- Job compress, DuckDB: the pivoted copy of one chunk range [start, end) (migration 0016):
-- one row per label set and instant, ordered by (entity, ts) so zone maps on entity skip
-- other label sets. {columns} is one `max(p.value) FILTER (WHERE c.col = N) AS mN` per
-- metric of the range (warehouse/jobs/readings.py: N are integers it read from
-- reading_columns). A metric has one series per label set, so max picks its one value.
-- Variables set by the runner: start, end, now. Result: rows copied.
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
-- Copies of other ranges overlapping this one (made before the chunk interval changed)
-- lost rows to the DELETE above: they are no longer complete.
DELETE FROM reading_chunks
 WHERE chunk_start < getvariable('end') AND chunk_end > getvariable('start');
INSERT OR REPLACE INTO reading_chunks (chunk_start, chunk_end, copied, copied_at, copy_no)
VALUES (getvariable('start'), getvariable('end'), true, getvariable('now'),
        nextval('reading_copy_seq'));
DROP TABLE _wh_range_series;
SELECT count(*) FROM readings WHERE ts >= getvariable('start') AND ts < getvariable('end');
