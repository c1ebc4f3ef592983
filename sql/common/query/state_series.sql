-- The number of series and the newest series id, for a schema without the jobs tables
-- (before migration 0003); see state.sql. Result: one row: series_max, series_count.
SELECT (SELECT max(series_id) FROM series) AS series_max,
       (SELECT count(*) FROM series) AS series_count
