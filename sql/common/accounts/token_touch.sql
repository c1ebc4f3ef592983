-- Record that a token was used (throttled by the caller). Params: :token_id, :now.
UPDATE api_tokens SET last_used_at = :now WHERE token_id = :token_id
