-- Forget sessions that expired before :now (run at each login). Params: :now.
DELETE FROM web_sessions WHERE expires_at <= :now
