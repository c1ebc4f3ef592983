-- Record that a session was used (throttled by the caller). Params: :session_hash, :now.
UPDATE web_sessions SET last_seen_at = :now WHERE session_hash = :session_hash
