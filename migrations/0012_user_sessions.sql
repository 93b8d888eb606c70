-- Accounts that can be limited to tenants, disabled, and have all their sessions ended at once.
-- A token carries the account's token_version at login; raising it (a password, role, scope or
-- status change) ends every session issued before. Logout ends one session (revoked_sessions).
ALTER TABLE users
    ADD COLUMN tenants       text[] CHECK (tenants IS NULL OR cardinality(tenants) <= 256), -- NULL: every tenant
    ADD COLUMN disabled      boolean NOT NULL DEFAULT false,
    ADD COLUMN token_version bigint  NOT NULL DEFAULT 0;

-- Sessions ended by logout before their token expired; rows past expires_at can go.
CREATE TABLE revoked_sessions
(
    session_id text PRIMARY KEY CHECK (length(session_id) <= 64),
    username   text        NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revoked_sessions_revoked_at ON revoked_sessions (revoked_at);
CREATE INDEX users_updated_at ON users (updated_at);
