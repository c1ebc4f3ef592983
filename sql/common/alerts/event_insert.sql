-- Record one state change of an alert instance. Params: one per alert_events column.
INSERT INTO alert_events (event_id, changed_at, rule_name, fingerprint, labels, from_state,
    to_state, value, reason)
VALUES (:event_id, :changed_at, :rule_name, :fingerprint, :labels, :from_state, :to_state, :value,
    :reason)
