-- Open a browser session (the SHA-256 digest of its id, never the id).
-- Params: :session_hash, :user_name, :now, :expires_at.
INSERT INTO web_sessions (session_hash, user_name, created_at, expires_at, last_seen_at)
VALUES (:session_hash, :user_name, :now, :expires_at, :now)
