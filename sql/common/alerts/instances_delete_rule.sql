-- Forget every instance of a rule (the rule was removed). Params: :rule_name.
DELETE FROM alert_instances WHERE rule_name = :rule_name
