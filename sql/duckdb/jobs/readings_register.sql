-- Job compress, DuckDB, after a chunk range [start, end) is sorted: number the label sets
-- and metrics of its points that the pivoted copy (`readings`, migration 0016) has not
-- met yet, and list the columns the range needs (warehouse/jobs/readings.py adds the
-- missing ones, then runs jobs/readings_copy.sql).
-- Variables set by the runner: start, end. Result: col of every metric in the range.
CREATE OR REPLACE TEMP TABLE _wh_range_series AS
SELECT series_id, metric, labels_key FROM series
 WHERE series_id IN (SELECT DISTINCT series_id FROM points
                      WHERE ts >= getvariable('start') AND ts < getvariable('end'));
INSERT INTO reading_entities (labels_key, entity)
SELECT labels_key,
       (SELECT coalesce(max(entity), 0) FROM reading_entities)
       + CAST(row_number() OVER (ORDER BY labels_key) AS INTEGER)
  FROM (SELECT DISTINCT labels_key FROM _wh_range_series
         WHERE labels_key NOT IN (SELECT labels_key FROM reading_entities));
INSERT INTO reading_columns (metric, col)
SELECT metric,
       (SELECT coalesce(max(col), 0) FROM reading_columns)
       + CAST(row_number() OVER (ORDER BY metric) AS INTEGER)
  FROM (SELECT DISTINCT metric FROM _wh_range_series
         WHERE metric NOT IN (SELECT metric FROM reading_columns));
SELECT col FROM reading_columns
 WHERE metric IN (SELECT metric FROM _wh_range_series) ORDER BY col;
