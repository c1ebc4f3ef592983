-- One token's public fields. Params: :token_id. Result: token_id, user_name, scope, revoked_at.
SELECT token_id, user_name, scope, revoked_at FROM api_tokens WHERE token_id = :token_id
