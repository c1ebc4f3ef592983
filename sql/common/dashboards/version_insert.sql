-- Save one version of a dashboard document. Params: :id, :version, :document (JSON text),
-- :author, :now.
INSERT INTO dashboard_versions (id, version, document, author, created_at)
VALUES (:id, :version, :document, :author, :now)
