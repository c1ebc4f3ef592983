-- Remove a dashboard (its versions are removed first by versions_delete). Params: :id.
DELETE FROM dashboards WHERE id = :id
