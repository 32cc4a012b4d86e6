-- Gatehouse schema v2: action approvals, policy rules, CIBA and device grants, RFC 9396 details.
-- Never edit this file once landed: add 0003_*.sql instead.

-- Policy rules: agent x action/scope pattern x resource pattern -> effect, for a lifetime.
CREATE TABLE rules (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,              -- a client_id, or '*' for every agent
    action      TEXT NOT NULL,              -- an action type or scope; '*' globs
    resource    TEXT NOT NULL,              -- a resource or URL pattern; '*' globs
    effect      TEXT NOT NULL CHECK (effect IN ('allow', 'deny', 'ask')),
    lifetime    TEXT NOT NULL CHECK (lifetime IN ('once', '1h', '8h', 'session', 'always')),
    session_id  TEXT,                       -- set for 'session': the rule dies with that server run
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,                    -- set for '1h' and '8h'
    created_by  TEXT NOT NULL,              -- 'cli', or the approval id whose "remember" made it
    hits        INTEGER NOT NULL DEFAULT 0,
    last_hit_at INTEGER,
    deleted_at  INTEGER                     -- 'once' rules are deleted by their first hit
) STRICT;
CREATE INDEX rules_live ON rules (deleted_at, agent);

-- CIBA auth_req_id and RFC 8628 device codes. Both let their holder collect tokens, so like every
-- other secret only their SHA-256 is kept.
CREATE TABLE backchannel_requests (
    handle_hash  BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('ciba', 'device')),
    client_id    TEXT NOT NULL REFERENCES agents (client_id),
    approval_id  TEXT NOT NULL REFERENCES approvals (id),
    user_code    TEXT,
    interval_ms  INTEGER NOT NULL,
    last_poll_at INTEGER,
    expires_at   INTEGER NOT NULL,
    redeemed_at  INTEGER
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX backchannel_by_user_code ON backchannel_requests (user_code) WHERE user_code IS NOT NULL;

-- RFC 9396 authorization_details (JSON array) granted, and carried by the tokens issued from it.
ALTER TABLE grants ADD COLUMN authorization_details TEXT;
ALTER TABLE tokens ADD COLUMN authorization_details TEXT;
-- For tokens limited to a number of uses (an approved action); NULL means unlimited.
ALTER TABLE tokens ADD COLUMN uses_left INTEGER;
