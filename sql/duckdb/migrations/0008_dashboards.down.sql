-- 0008 dashboards, DuckDB: drop the dashboards and their version history.
DROP TABLE IF EXISTS dashboard_versions;
DROP TABLE IF EXISTS dashboards;
