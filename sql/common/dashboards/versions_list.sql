-- The history of a dashboard, oldest first. Params: :id. Result: version, author,
-- created_at, document (JSON text).
SELECT version, author, created_at, document
FROM dashboard_versions
WHERE id = :id
ORDER BY version
