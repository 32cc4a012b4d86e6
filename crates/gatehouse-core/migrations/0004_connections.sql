-- Gatehouse schema v4: connected upstream accounts (the vault's metadata).
-- Never edit this file once landed: add 0005_*.sql instead.

-- One row per connection. The secret itself (API key, bearer token, OAuth tokens) lives only in
-- the OS keyring under `keyring_ref`; nothing here is secret.
CREATE TABLE connections (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE
                 CHECK (length(name) BETWEEN 1 AND 40 AND name NOT GLOB '*[^a-z0-9-]*'),
    kind         TEXT NOT NULL CHECK (kind IN ('api_key', 'bearer', 'oauth')),
    provider     TEXT NOT NULL,              -- a preset name, or the upstream's host
    label        TEXT NOT NULL DEFAULT '',
    base_url     TEXT NOT NULL,              -- the upstream's absolute http(s) URL
    header_name  TEXT,                       -- the header carrying an api_key; NULL otherwise
    scopes       TEXT NOT NULL DEFAULT '',   -- space-separated upstream scopes (oauth)
    status       TEXT NOT NULL CHECK (status IN ('active', 'expired', 'disconnected')),
    keyring_ref  TEXT NOT NULL,              -- the keyring entry's user, e.g. connection:github
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
) STRICT;
