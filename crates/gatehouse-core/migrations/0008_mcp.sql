-- Gatehouse schema v8: the MCP gateway's servers and the tools they list, with pinned definitions.
-- Never edit this file once landed: add 0009_*.sql instead.

-- One row per MCP server put behind Gatehouse, exposed at `/mcp/{name}`. Nothing here is secret:
-- an environment value that is a secret is a reference to a vault connection
-- ({"connection":"NAME"}), resolved from the keyring when the server is started.
CREATE TABLE mcp_servers (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE
               CHECK (length(name) BETWEEN 1 AND 40 AND name NOT GLOB '*[^a-z0-9-]*'),
    transport  TEXT NOT NULL CHECK (transport IN ('stdio', 'http')),
    command    TEXT NOT NULL DEFAULT '[]',   -- stdio: the argv, a JSON array of strings
    env        TEXT NOT NULL DEFAULT '{}',   -- stdio: KEY -> {"value":..} | {"connection":NAME}
    url        TEXT,                         -- http: the upstream's absolute http(s) URL
    connection TEXT,                         -- http: the vault connection sent upstream
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Each tool a server has listed, with the definition it listed last and the one the person
-- approved (pinned). A tool is offered to agents only while both hashes agree.
CREATE TABLE mcp_tools (
    server_id         INTEGER NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    definition        TEXT NOT NULL,         -- the tool as last listed (JSON)
    hash              TEXT NOT NULL,         -- sha256:<hex> of its canonical definition
    present           INTEGER NOT NULL CHECK (present IN (0, 1)),  -- in the latest listing
    first_seen_at     INTEGER NOT NULL,
    seen_at           INTEGER NOT NULL,
    pinned_hash       TEXT,                  -- NULL until the person first approves it
    pinned_definition TEXT,
    pinned_at         INTEGER,
    pinned_by         TEXT,                  -- consent, cli, desktop
    PRIMARY KEY (server_id, name)
) STRICT;
