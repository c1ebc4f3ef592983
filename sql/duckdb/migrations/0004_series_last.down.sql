-- 0004 down: the view goes back to searching points (sql/<dialect>/views/series_latest.sql
-- is re-run by the migration after this file), and series_last is dropped.
DROP VIEW IF EXISTS series_latest;
DROP TABLE IF EXISTS series_last;
