-- Gatehouse schema v5: OAuth connections' client settings (the vault's metadata).
-- Never edit this file once landed: add 0006_*.sql instead.

-- One row per `oauth` connection: where its tokens come from. Nothing here is secret: the access
-- and refresh tokens and the client secret live only in the OS keyring entry of the connection.
CREATE TABLE oauth_clients (
    connection_id     INTEGER PRIMARY KEY REFERENCES connections(id) ON DELETE CASCADE,
    authorization_url TEXT NOT NULL,
    token_url         TEXT NOT NULL,
    revocation_url    TEXT,                  -- RFC 7009 endpoint; NULL when the provider has none
    client_id         TEXT NOT NULL,
    refreshed_at      INTEGER,               -- the last successful refresh
    last_error        TEXT                   -- why the connection expired (an OAuth error code)
) STRICT;
