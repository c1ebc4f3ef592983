-- Store a new API token (its SHA-256 digest, never the token). Params: :token_id,
-- :token_hash, :user_name, :name, :scope, :now, :expires_at (NULL: never expires).
INSERT INTO api_tokens (token_id, token_hash, user_name, name, scope, created_at, expires_at)
VALUES (:token_id, :token_hash, :user_name, :name, :scope, :now, :expires_at)
