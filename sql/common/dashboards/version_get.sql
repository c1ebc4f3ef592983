-- One saved version. Params: :id, :version. Result: id, version, document, author,
-- created_at.
SELECT id, version, document, author, created_at
FROM dashboard_versions
WHERE id = :id AND version = :version
