-- Remember what was last delivered for an instance, so a restart never sends it again.
-- Params: :fingerprint, :notified_state, :notified_at.
UPDATE alert_instances SET notified_state = :notified_state, notified_at = :notified_at
WHERE fingerprint = :fingerprint
