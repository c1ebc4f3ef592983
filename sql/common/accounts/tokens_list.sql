-- API tokens, newest first, optionally of one user (:user_name NULL: all).
-- Result: token_id, user_name, name, scope, created_at, expires_at, revoked_at, last_used_at.
SELECT token_id, user_name, name, scope, created_at, expires_at, revoked_at, last_used_at
FROM api_tokens
WHERE CAST(:user_name AS VARCHAR) IS NULL OR user_name = :user_name
ORDER BY created_at DESC, token_id
