-- Store one alert rule (the caller deletes the old version in the same transaction).
-- Params: :name, :kind, :spec (JSON text), :enabled, :created_at, :updated_at.
INSERT INTO alert_rules (name, kind, spec, enabled, created_at, updated_at)
VALUES (:name, :kind, :spec, :enabled, :created_at, :updated_at)
