-- Every user, without password hashes. Result: name, role, created_at, password_changed_at,
-- tokens (active: neither revoked nor expired at :now), sessions (unexpired at :now).
SELECT u.name, u.role, u.created_at, u.password_changed_at,
       (SELECT count(*) FROM api_tokens t
        WHERE t.user_name = u.name AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > :now)) AS tokens,
       (SELECT count(*) FROM web_sessions s
        WHERE s.user_name = u.name AND s.expires_at > :now) AS sessions
FROM users u
ORDER BY u.name
