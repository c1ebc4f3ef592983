-- Owner, visibility and who a dashboard is shared with. Params: :id, :owner, :visibility,
-- :shared_with (JSON text), :now.
UPDATE dashboards
SET owner = :owner, visibility = :visibility, shared_with = :shared_with, updated_at = :now
WHERE id = :id
