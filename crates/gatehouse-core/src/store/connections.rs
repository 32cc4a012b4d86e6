//! Connected upstream accounts as stored: metadata only. The secret of each connection lives in
//! the OS keyring (see `vault`); these rows name its entry and never hold it.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{parse_space_list, space_list};
use crate::clock::Millis;

/// A stored connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRow {
    pub id: i64,
    /// The slug agents use in `/gateway/{name}/...`: `[a-z0-9-]{1,40}`.
    pub name: String,
    /// `api_key`, `bearer` or `oauth`.
    pub kind: String,
    /// A preset name (oauth), or the upstream's host.
    pub provider: String,
    pub label: String,
    /// The upstream's absolute http(s) URL; gateway paths are appended to it.
    pub base_url: String,
    /// The header carrying an `api_key` (e.g. `X-API-Key`); `None` for the other kinds.
    pub header_name: Option<String>,
    pub scopes: Vec<String>,
    /// `active`, `expired` or `disconnected`.
    pub status: String,
    /// The keyring entry's user (service `gatehouse`), e.g. `connection:github`.
    pub keyring_ref: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// Fields of a new connection.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub provider: &'a str,
    pub label: &'a str,
    pub base_url: &'a str,
    pub header_name: Option<&'a str>,
    pub scopes: &'a [String],
    pub keyring_ref: &'a str,
    pub expires_at: Option<Millis>,
}

const COLUMNS: &str = "id, name, kind, provider, label, base_url, header_name, scopes, status, \
                       keyring_ref, created_at, expires_at, last_used_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRow> {
    Ok(ConnectionRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        provider: r.get(3)?,
        label: r.get(4)?,
        base_url: r.get(5)?,
        header_name: r.get(6)?,
        scopes: parse_space_list(&r.get::<_, String>(7)?),
        status: r.get(8)?,
        keyring_ref: r.get(9)?,
        created_at: r.get(10)?,
        expires_at: r.get(11)?,
        last_used_at: r.get(12)?,
    })
}

/// Inserts an `active` connection; returns its id.
pub fn insert(conn: &Connection, c: &NewConnection<'_>, now: Millis) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO connections (name, kind, provider, label, base_url, header_name, scopes, \
         status, keyring_ref, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?9, ?10)",
    )?
    .execute(params![
        c.name,
        c.kind,
        c.provider,
        c.label,
        c.base_url,
        c.header_name,
        space_list(c.scopes),
        c.keyring_ref,
        now,
        c.expires_at
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Every connection, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ConnectionRow>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM connections ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<ConnectionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM connections WHERE name = ?1"
    ))?
    .query_row([name], from_row)
    .optional()
}

/// Deletes a connection's row; false if there was none.
pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM connections WHERE name = ?1")?
        .execute([name])?;
    Ok(n == 1)
}

/// Records that the gateway used a connection (call inside the write that audits the call).
pub fn touch(conn: &Connection, name: &str, now: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE connections SET last_used_at = ?2 WHERE name = ?1")?
        .execute(params![name, now])?;
    Ok(())
}

/// Where an `oauth` connection's tokens come from (table `oauth_clients`, migration 0005). Not
/// secret: the tokens and the client secret are in the connection's keyring entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthClientRow {
    pub authorization_url: String,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub client_id: String,
    pub refreshed_at: Option<Millis>,
    /// Why the connection expired: the provider's OAuth error code, never a token.
    pub last_error: Option<String>,
}

/// Files the OAuth client settings of the connection `connection_id`.
pub fn insert_oauth_client(
    conn: &Connection,
    connection_id: i64,
    c: &OAuthClientRow,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO oauth_clients (connection_id, authorization_url, token_url, revocation_url, \
         client_id, refreshed_at, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        connection_id,
        c.authorization_url,
        c.token_url,
        c.revocation_url,
        c.client_id,
        c.refreshed_at,
        c.last_error
    ])?;
    Ok(())
}

/// The OAuth client settings of the connection named `name`.
pub fn oauth_client(conn: &Connection, name: &str) -> rusqlite::Result<Option<OAuthClientRow>> {
    conn.prepare_cached(
        "SELECT o.authorization_url, o.token_url, o.revocation_url, o.client_id, o.refreshed_at, \
         o.last_error FROM oauth_clients o JOIN connections c ON c.id = o.connection_id \
         WHERE c.name = ?1",
    )?
    .query_row([name], |r| {
        Ok(OAuthClientRow {
            authorization_url: r.get(0)?,
            token_url: r.get(1)?,
            revocation_url: r.get(2)?,
            client_id: r.get(3)?,
            refreshed_at: r.get(4)?,
            last_error: r.get(5)?,
        })
    })
    .optional()
}

/// Records fresh tokens of an `oauth` connection: active again, with their scopes and expiry.
/// `refreshed` says whether they came from a refresh (rather than a new authorization).
pub fn set_oauth_tokens(
    conn: &Connection,
    name: &str,
    scopes: &[String],
    expires_at: Option<Millis>,
    refreshed: Option<Millis>,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE connections SET status = 'active', scopes = ?2, expires_at = ?3 \
             WHERE name = ?1 AND kind = 'oauth'",
        )?
        .execute(params![name, space_list(scopes), expires_at])?;
    conn.prepare_cached(
        "UPDATE oauth_clients SET last_error = NULL, refreshed_at = coalesce(?2, refreshed_at) \
         WHERE connection_id = (SELECT id FROM connections WHERE name = ?1)",
    )?
    .execute(params![name, refreshed])?;
    Ok(n == 1)
}

/// Marks an `oauth` connection expired, keeping the provider's error code (never a token).
pub fn mark_expired(conn: &Connection, name: &str, error: &str) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE connections SET status = 'expired' WHERE name = ?1 AND kind = 'oauth' \
             AND status = 'active'",
        )?
        .execute([name])?;
    conn.prepare_cached(
        "UPDATE oauth_clients SET last_error = ?2 \
         WHERE connection_id = (SELECT id FROM connections WHERE name = ?1)",
    )?
    .execute(params![name, error])?;
    Ok(n == 1)
}
