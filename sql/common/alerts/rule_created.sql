-- When a rule was first stored (kept across updates). Params: :name. Result: created_at.
SELECT created_at FROM alert_rules WHERE name = :name
