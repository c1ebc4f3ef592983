-- Every alert rule. Result: name, kind, spec, enabled, created_at, updated_at.
SELECT name, kind, spec, enabled, created_at, updated_at FROM alert_rules ORDER BY name
