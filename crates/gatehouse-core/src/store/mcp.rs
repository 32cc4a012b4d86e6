//! MCP servers and their tools as stored (tables `mcp_servers` and `mcp_tools`, migration 0008):
//! how each upstream is started or reached, and every tool it listed with the definition the
//! person approved (pinned). Nothing here is secret: secret environment values are references to
//! vault connections.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// The transport of a local server Gatehouse starts and talks to over stdin/stdout.
pub const STDIO: &str = "stdio";
/// The transport of a remote server reached over MCP Streamable HTTP.
pub const HTTP: &str = "http";

/// One environment variable of a stdio server: a plain value, or the credential of a vault
/// connection (read from the keyring when the server starts, never stored here).
/// Serialized as `{"value":"..."}` or `{"connection":"NAME"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum EnvValue {
    Value(String),
    Connection(String),
}

/// A stored MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct McpServerRow {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// The slug agents use in `/mcp/{name}`: `[a-z0-9-]{1,40}`.
    pub name: String,
    /// [`STDIO`] or [`HTTP`].
    pub transport: String,
    /// stdio: the program and its arguments (empty for http).
    pub command: Vec<String>,
    /// stdio: the environment given to the program, on top of a minimal inherited one.
    pub env: BTreeMap<String, EnvValue>,
    /// http: the upstream's absolute http(s) URL.
    pub url: Option<String>,
    /// http: the vault connection whose credential is sent upstream.
    pub connection: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub updated_at: Millis,
}

/// Fields of a new server, as validated by [`crate::mcp::add_server`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewMcpServer {
    pub name: String,
    /// [`STDIO`] or [`HTTP`].
    pub transport: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub connection: Option<String>,
}

/// Where a tool stands, from its listing and its pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ToolStatus {
    /// Listed, and its definition is the one the person approved: offered and callable.
    Pinned,
    /// Listed, approved once, but its definition differs now: held until re-approved.
    Changed,
    /// Listed, never approved: held until approved (at consent, or explicitly).
    New,
    /// No longer listed by the server.
    Removed,
}

impl ToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Pinned => "pinned",
            ToolStatus::Changed => "changed",
            ToolStatus::New => "new",
            ToolStatus::Removed => "removed",
        }
    }
}

/// A tool a server listed, with its pin.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct McpToolRow {
    /// The server's name.
    pub server: String,
    pub name: String,
    /// The tool as last listed (MCP `Tool`: name, title, description, inputSchema, ...).
    pub definition: serde_json::Value,
    /// `sha256:<hex>` of its canonical definition ([`crate::mcp::definition_hash`]).
    pub hash: String,
    /// Whether the latest listing had it.
    pub present: bool,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub first_seen_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seen_at: Millis,
    pub pinned_hash: Option<String>,
    pub pinned_definition: Option<serde_json::Value>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub pinned_at: Option<Millis>,
    /// `consent`, `cli` or `desktop`.
    pub pinned_by: Option<String>,
}

impl McpToolRow {
    pub fn status(&self) -> ToolStatus {
        match (&self.pinned_hash, self.present) {
            (_, false) => ToolStatus::Removed,
            (None, true) => ToolStatus::New,
            (Some(p), true) if *p == self.hash => ToolStatus::Pinned,
            (Some(_), true) => ToolStatus::Changed,
        }
    }
}

fn json_column<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_json_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}

fn to_text<T: Serialize>(v: &T) -> String {
    // Serializing strings, maps of strings and JSON values cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

const SERVER_COLUMNS: &str =
    "id, name, transport, command, env, url, connection, created_at, updated_at";

fn server_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<McpServerRow> {
    Ok(McpServerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        transport: r.get(2)?,
        command: json_column(r, 3)?,
        env: json_column(r, 4)?,
        url: r.get(5)?,
        connection: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// Inserts a server (already validated); returns its id.
pub fn insert_server(conn: &Connection, s: &NewMcpServer, now: Millis) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO mcp_servers (name, transport, command, env, url, connection, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        s.name,
        s.transport,
        to_text(&s.command),
        to_text(&s.env),
        s.url,
        s.connection,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

pub fn get_server(conn: &Connection, name: &str) -> rusqlite::Result<Option<McpServerRow>> {
    conn.prepare_cached(&format!(
        "SELECT {SERVER_COLUMNS} FROM mcp_servers WHERE name = ?1"
    ))?
    .query_row([name], server_from_row)
    .optional()
}

/// Every server, by name.
pub fn list_servers(conn: &Connection) -> rusqlite::Result<Vec<McpServerRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SERVER_COLUMNS} FROM mcp_servers ORDER BY name"
    ))?;
    let rows = stmt.query_map([], server_from_row)?;
    rows.collect()
}

/// Deletes a server and (by cascade) its tools; false if there was none.
pub fn delete_server(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM mcp_servers WHERE name = ?1")?
        .execute([name])?;
    Ok(n == 1)
}

/// The names of the servers whose environment or upstream uses the vault connection `name`.
pub fn servers_using_connection(conn: &Connection, name: &str) -> rusqlite::Result<Vec<String>> {
    Ok(list_servers(conn)?
        .into_iter()
        .filter(|s| {
            s.connection.as_deref() == Some(name)
                || s.env
                    .values()
                    .any(|v| matches!(v, EnvValue::Connection(c) if c == name))
        })
        .map(|s| s.name)
        .collect())
}

const TOOL_COLUMNS: &str = "s.name, t.name, t.definition, t.hash, t.present, t.first_seen_at, \
                            t.seen_at, t.pinned_hash, t.pinned_definition, t.pinned_at, t.pinned_by";

fn tool_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<McpToolRow> {
    Ok(McpToolRow {
        server: r.get(0)?,
        name: r.get(1)?,
        definition: json_column(r, 2)?,
        hash: r.get(3)?,
        present: r.get::<_, i64>(4)? == 1,
        first_seen_at: r.get(5)?,
        seen_at: r.get(6)?,
        pinned_hash: r.get(7)?,
        pinned_definition: opt_json_column(r, 8)?,
        pinned_at: r.get(9)?,
        pinned_by: r.get(10)?,
    })
}

/// Every tool a server has listed (removed ones too), by name.
pub fn list_tools(conn: &Connection, server: &str) -> rusqlite::Result<Vec<McpToolRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TOOL_COLUMNS} FROM mcp_tools t JOIN mcp_servers s ON s.id = t.server_id \
         WHERE s.name = ?1 ORDER BY t.name"
    ))?;
    let rows = stmt.query_map([server], tool_from_row)?;
    rows.collect()
}

pub fn get_tool(
    conn: &Connection,
    server: &str,
    tool: &str,
) -> rusqlite::Result<Option<McpToolRow>> {
    conn.prepare_cached(&format!(
        "SELECT {TOOL_COLUMNS} FROM mcp_tools t JOIN mcp_servers s ON s.id = t.server_id \
         WHERE s.name = ?1 AND t.name = ?2"
    ))?
    .query_row([server, tool], tool_from_row)
    .optional()
}

/// Records that the server listed `tool` now with this definition and hash: inserted when first
/// seen, otherwise its definition, hash and `seen_at` are updated and it is present again. The pin
/// is never touched here.
pub fn upsert_seen_tool(
    conn: &Connection,
    server_id: i64,
    tool: &str,
    definition: &serde_json::Value,
    hash: &str,
    now: Millis,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO mcp_tools (server_id, name, definition, hash, present, first_seen_at, \
         seen_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5) \
         ON CONFLICT (server_id, name) DO UPDATE SET definition = excluded.definition, \
         hash = excluded.hash, present = 1, seen_at = excluded.seen_at",
    )?
    .execute(params![server_id, tool, to_text(definition), hash, now])?;
    Ok(())
}

/// Marks a tool as no longer listed; false if it was not present.
pub fn mark_absent(conn: &Connection, server_id: i64, tool: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE mcp_tools SET present = 0 WHERE server_id = ?1 AND name = ?2 AND present = 1",
        )?
        .execute(params![server_id, tool])?;
    Ok(n == 1)
}

/// Pins a tool's current definition (the person approved it); false if there is no such tool.
pub fn pin(
    conn: &Connection,
    server_id: i64,
    tool: &str,
    by: &str,
    now: Millis,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE mcp_tools SET pinned_hash = hash, pinned_definition = definition, \
             pinned_at = ?3, pinned_by = ?4 WHERE server_id = ?1 AND name = ?2",
        )?
        .execute(params![server_id, tool, now, by])?;
    Ok(n == 1)
}
