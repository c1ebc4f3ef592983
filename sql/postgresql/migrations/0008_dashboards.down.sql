-- 0008 dashboards, PostgreSQL: drop the dashboards and their version history.
DROP TABLE IF EXISTS dashboard_versions;
DROP TABLE IF EXISTS dashboards;
