-- Move a dashboard to version :version if it is still at :expected (optimistic: a
-- concurrent edit makes this update no row). Params: :id, :title, :version, :expected, :now.
UPDATE dashboards
SET title = :title, current_version = :version, updated_at = :now
WHERE id = :id AND current_version = :expected
