-- Remove one alert rule. Params: :name.
DELETE FROM alert_rules WHERE name = :name
