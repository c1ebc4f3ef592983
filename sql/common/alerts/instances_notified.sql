-- Remember what was last delivered for instances, so a restart never sends it again.
-- Params: :fingerprints (list), :states (list, same length), :notified_at.
UPDATE alert_instances
SET notified_state = d.state, notified_at = :notified_at
FROM (SELECT unnest(CAST(:fingerprints AS VARCHAR[])) AS fingerprint,
             unnest(CAST(:states AS VARCHAR[])) AS state) AS d
WHERE alert_instances.fingerprint = d.fingerprint
