-- State changes, newest first. Params: :rule_name (NULL: every rule), :since, :limit.
-- Result: changed_at, rule_name, fingerprint, labels, from_state, to_state, value, reason.
SELECT changed_at, rule_name, fingerprint, labels, from_state, to_state, value, reason
FROM alert_events
WHERE (CAST(:rule_name AS VARCHAR) IS NULL OR rule_name = :rule_name) AND changed_at >= :since
ORDER BY changed_at DESC, event_id DESC
LIMIT :limit
