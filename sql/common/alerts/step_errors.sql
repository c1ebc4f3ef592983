-- Finished step runs of :recipe (one step, or all when :step is NULL) that started in
-- [:start, :end], with how many failed. Result: step, total, failed.
SELECT s.step AS step, count(*) AS total,
       sum(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END) AS failed
FROM step_runs s
JOIN runs r ON r.run_id = s.run_id
WHERE r.recipe = :recipe AND s.started_at >= :start AND s.started_at <= :end
  AND r.started_at >= :since AND s.status <> 'running'
  AND (CAST(:step AS VARCHAR) IS NULL OR s.step = :step)
GROUP BY s.step
