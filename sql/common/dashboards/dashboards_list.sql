-- Every dashboard, by id. Result: id, title, owner, visibility, shared_with (JSON text),
-- current_version, created_at, updated_at.
SELECT id, title, owner, visibility, shared_with, current_version, created_at, updated_at
FROM dashboards
ORDER BY id
