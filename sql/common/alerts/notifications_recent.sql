-- Delivery attempts, newest first. Params: :limit.
-- Result: attempted_at, receiver, channel, group_key, fingerprints, status, attempt, error.
SELECT attempted_at, receiver, channel, group_key, fingerprints, status, attempt, error
FROM notifications ORDER BY attempted_at DESC, notification_id DESC LIMIT :limit
