-- The latest finish of a succeeded run of :recipe that started after :since.
-- Result: last_ok (NULL when none).
SELECT max(finished_at) AS last_ok
FROM runs
WHERE recipe = :recipe AND status = 'succeeded' AND started_at >= :since
