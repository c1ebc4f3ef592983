-- 0002 down: drop the analyst views.
DROP VIEW IF EXISTS series_latest;
DROP VIEW IF EXISTS slow_runs;
DROP VIEW IF EXISTS resource_usage;
DROP VIEW IF EXISTS error_patterns;
DROP VIEW IF EXISTS run_timeline;
DROP VIEW IF EXISTS step_stats;
DROP VIEW IF EXISTS recipe_daily_stats;
