-- 0007 auth, PostgreSQL: users with a role, API tokens and browser sessions of the served
-- warehouse (issue 11; docs/security.md). Secrets are never stored: passwords as Argon2id
-- hashes, tokens and session ids as SHA-256 hex digests of high-entropy random strings.
-- Removing a user deletes its tokens and sessions explicitly (the same code runs on DuckDB,
-- which has no cascades); the foreign keys here only guard against orphans.
-- These tables hold credentials: the analyst role (`warehouse grant analyst`) never gets them.

CREATE TABLE users (
    name                text        PRIMARY KEY,
    role                text        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    password_hash       text        NOT NULL,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);

-- token_id is public (listed, used to revoke); token_hash is the digest of the secret.
CREATE TABLE api_tokens (
    token_id     text        PRIMARY KEY,
    token_hash   text        NOT NULL UNIQUE,
    user_name    text        NOT NULL REFERENCES users (name),
    name         text,
    scope        text        NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

CREATE TABLE web_sessions (
    session_hash text        PRIMARY KEY,
    user_name    text        NOT NULL REFERENCES users (name),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);
