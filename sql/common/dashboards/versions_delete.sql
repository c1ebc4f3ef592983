-- Remove every saved version of a dashboard. Params: :id.
DELETE FROM dashboard_versions WHERE id = :id
