-- 0011 down: slow_runs as 0002 defined it (a self-join of each run with its recipe's runs).
CREATE OR REPLACE VIEW slow_runs AS
WITH trailing_window AS (
    SELECT r.run_id, r.recipe, r.started_at, r.status, r.duration_us,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY p.duration_us) AS p95_us,
           count(p.duration_us) AS n
    FROM runs AS r
    JOIN runs AS p
      ON p.recipe = r.recipe
     AND p.started_at >= r.started_at - INTERVAL '30 days'
     AND p.started_at < r.started_at
     AND p.duration_us IS NOT NULL
    WHERE r.duration_us IS NOT NULL
    GROUP BY r.run_id, r.recipe, r.started_at, r.status, r.duration_us
)
SELECT run_id, recipe, started_at, status,
       duration_us / CAST(1000 AS DOUBLE PRECISION) AS duration_ms,
       p95_us / CAST(1000 AS DOUBLE PRECISION) AS trailing_p95_ms,
       n AS trailing_runs,
       duration_us / NULLIF(p95_us, 0) AS slowdown
FROM trailing_window
WHERE n >= 5 AND duration_us > p95_us;
