-- 0007 auth, DuckDB: users with a role, API tokens and browser sessions of the served
-- warehouse (issue 11; docs/security.md). Secrets are never stored: passwords as Argon2id
-- hashes, tokens and session ids as SHA-256 hex digests of high-entropy random strings.
-- No foreign keys: DuckDB has no ON DELETE CASCADE and checks them eagerly on update, so
-- removing a user deletes its tokens and sessions in the same transaction instead.

CREATE TABLE users (
    name                VARCHAR     PRIMARY KEY,
    role                VARCHAR     NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    password_hash       VARCHAR     NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    password_changed_at TIMESTAMPTZ NOT NULL
);

-- token_id is public (listed, used to revoke); token_hash is the digest of the secret.
CREATE TABLE api_tokens (
    token_id     VARCHAR     PRIMARY KEY,
    token_hash   VARCHAR     NOT NULL UNIQUE,
    user_name    VARCHAR     NOT NULL,
    name         VARCHAR,
    scope        VARCHAR     NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

CREATE TABLE web_sessions (
    session_hash VARCHAR     PRIMARY KEY,
    user_name    VARCHAR     NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_name);
