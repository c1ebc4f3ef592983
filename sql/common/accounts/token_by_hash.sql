-- The token with this digest and its user's role, for authenticating a request.
-- Params: :token_hash. Result: token_id, user_name, scope, expires_at, revoked_at,
-- last_used_at, role (NULL when the user is gone).
SELECT t.token_id, t.user_name, t.scope, t.expires_at, t.revoked_at, t.last_used_at, u.role
FROM api_tokens t LEFT JOIN users u ON u.name = t.user_name
WHERE t.token_hash = :token_hash
