-- The session with this digest and its user's role. Params: :session_hash.
-- Result: user_name, expires_at, last_seen_at, role (NULL when the user is gone).
SELECT s.user_name, s.expires_at, s.last_seen_at, u.role
FROM web_sessions s LEFT JOIN users u ON u.name = s.user_name
WHERE s.session_hash = :session_hash
