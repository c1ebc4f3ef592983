-- A new dashboard at version :version. Params: :id, :title, :owner, :visibility,
-- :shared_with (JSON text), :version, :now.
INSERT INTO dashboards (id, title, owner, visibility, shared_with, current_version,
                        created_at, updated_at)
VALUES (:id, :title, :owner, :visibility, :shared_with, :version, :now, :now)
