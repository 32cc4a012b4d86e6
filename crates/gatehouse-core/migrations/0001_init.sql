-- Gatehouse schema v1. Never edit this file once landed: add 0002_*.sql instead.
-- Secrets never live here: tokens, codes and client secrets are stored as SHA-256 hashes.

CREATE TABLE agents (
    client_id        TEXT PRIMARY KEY,
    client_name      TEXT,
    secret_hash      BLOB,
    auth_method      TEXT NOT NULL CHECK (auth_method IN ('none', 'client_secret_basic', 'client_secret_post')),
    application_type TEXT NOT NULL,
    redirect_uris    TEXT NOT NULL,
    grant_types      TEXT NOT NULL,
    response_types   TEXT NOT NULL,
    scope            TEXT,
    metadata         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER,
    revoked_at       INTEGER
) STRICT;

CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES agents (client_id),
    request        TEXT NOT NULL,
    request_hash   BLOB NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    channel        TEXT,
    granted_scopes TEXT,
    remember       TEXT,
    completed_at   INTEGER
) STRICT;
CREATE INDEX approvals_by_status ON approvals (status, expires_at);

CREATE TABLE consents (
    id            INTEGER PRIMARY KEY,
    client_id     TEXT NOT NULL REFERENCES agents (client_id),
    redirect_host TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    resources     TEXT NOT NULL,
    remember      TEXT NOT NULL,
    session_id    TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX consents_by_client ON consents (client_id);

CREATE TABLE grants (
    id             INTEGER PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES agents (client_id),
    scopes         TEXT NOT NULL,
    resources      TEXT NOT NULL,
    approval_id    TEXT REFERENCES approvals (id),
    consent_id     INTEGER REFERENCES consents (id),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
) STRICT;
CREATE INDEX grants_by_client ON grants (client_id);

CREATE TABLE auth_codes (
    code_hash          BLOB PRIMARY KEY,
    grant_id           INTEGER NOT NULL REFERENCES grants (id),
    client_id          TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given INTEGER NOT NULL,
    code_challenge     TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
    token_hash   BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id     INTEGER NOT NULL REFERENCES grants (id),
    client_id    TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    audience     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    rotated_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX tokens_by_grant ON tokens (grant_id);

-- The audit log. hash = SHA-256(prev_hash || canonical row bytes); see audit.rs.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client_id TEXT,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
) STRICT;
CREATE INDEX events_by_client ON events (client_id, id);
CREATE TRIGGER events_are_append_only_u BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER events_are_append_only_d BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
