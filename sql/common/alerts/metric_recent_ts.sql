-- The newest timestamps of a metric (any series): to tell its data interval.
-- Params: :metric, :limit. Result: ts.
SELECT p.ts AS ts
FROM points p JOIN series s ON s.series_id = p.series_id
WHERE s.metric = :metric
ORDER BY p.ts DESC
LIMIT :limit
