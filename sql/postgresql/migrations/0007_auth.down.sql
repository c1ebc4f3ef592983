-- 0007 auth, PostgreSQL: drop the users, tokens and sessions tables (every account is lost).
DROP TABLE IF EXISTS web_sessions;
DROP TABLE IF EXISTS api_tokens;
DROP TABLE IF EXISTS users;
