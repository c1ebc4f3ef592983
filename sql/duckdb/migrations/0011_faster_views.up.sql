-- 0011 up: slow_runs as a window over each recipe's runs ordered by start. The 0002
-- definition joined every run to all runs of its recipe and kept those of the 30 days
-- before it; DuckDB hash-joins on recipe and filters afterwards, so a year of hourly runs
-- meant 77M pairs per recipe (1.3-2.7 s for one recipe's year on this machine). A windowed
-- quantile reads each recipe's runs once (~0.1 s) and gives the same rows and numbers:
-- the frame is the 30 days before the run (RANGE ... PRECEDING), EXCLUDE GROUP leaves out
-- the run and any run that started at the same instant (p.started_at < r.started_at), and
-- quantile_cont/count ignore runs without a duration as the join's condition did.
-- Columns: run_id, recipe, started_at, status, duration_ms, trailing_p95_ms,
-- trailing_runs, slowdown (duration / trailing p95).
CREATE OR REPLACE VIEW slow_runs AS
WITH trailing_window AS (
    SELECT run_id, recipe, started_at, status, duration_us,
           quantile_cont(duration_us, 0.95) OVER last_30_days AS p95_us,
           count(duration_us) OVER last_30_days AS n
    FROM runs
    WINDOW last_30_days AS (
        PARTITION BY recipe ORDER BY started_at
        RANGE BETWEEN INTERVAL '30 days' PRECEDING AND CURRENT ROW EXCLUDE GROUP)
)
SELECT run_id, recipe, started_at, status,
       duration_us / CAST(1000 AS DOUBLE PRECISION) AS duration_ms,
       p95_us / CAST(1000 AS DOUBLE PRECISION) AS trailing_p95_ms,
       n AS trailing_runs,
       duration_us / NULLIF(p95_us, 0) AS slowdown
FROM trailing_window
WHERE duration_us IS NOT NULL AND n >= 5 AND duration_us > p95_us;
