-- Revoke a token from now on (kept for the record). Params: :token_id, :now.
UPDATE api_tokens SET revoked_at = :now WHERE token_id = :token_id AND revoked_at IS NULL
