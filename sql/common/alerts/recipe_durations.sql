-- Durations of a recipe's succeeded runs that started in [:since, :until): the baseline
-- for a p95 x factor rule. Params: :recipe, :since, :until. Result: recipe, duration_us.
SELECT recipe, duration_us
FROM runs
WHERE started_at >= :since AND started_at < :until AND status = 'succeeded'
  AND duration_us IS NOT NULL
  AND (CAST(:recipe AS VARCHAR) IS NULL OR recipe = :recipe)
