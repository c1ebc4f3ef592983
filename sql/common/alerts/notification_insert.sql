-- Record one delivery attempt. Params: one per notifications column.
INSERT INTO notifications (notification_id, attempted_at, receiver, channel, group_key, fingerprints,
    status, attempt, error)
VALUES (:notification_id, :attempted_at, :receiver, :channel, :group_key, :fingerprints, :status,
    :attempt, :error)
