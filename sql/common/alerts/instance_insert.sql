-- Store an alert instance's state (the caller deletes the old row in the same transaction).
-- Params: one per alert_instances column.
INSERT INTO alert_instances (fingerprint, rule_name, labels, state, value, annotations,
    active_at, fired_at, resolved_at, last_active_at, last_eval_at, notified_state,
    notified_at)
VALUES (:fingerprint, :rule_name, :labels, :state, :value, :annotations, :active_at,
    :fired_at, :resolved_at, :last_active_at, :last_eval_at, :notified_state, :notified_at)
