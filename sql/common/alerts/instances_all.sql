-- Every alert instance with its state. Result: the alert_instances columns.
SELECT fingerprint, rule_name, labels, state, value, annotations, active_at, fired_at,
       resolved_at, last_active_at, last_eval_at, notified_state, notified_at
FROM alert_instances ORDER BY rule_name, fingerprint
