-- End one session (logout). Params: :session_hash.
DELETE FROM web_sessions WHERE session_hash = :session_hash
