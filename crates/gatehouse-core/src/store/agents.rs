//! Agents (OAuth clients) as stored: one row per registration.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{json_list, parse_json_list};
use crate::clock::Millis;
use crate::oauth::registration::ClientMetadata;
use crate::secret::TokenHash;

/// A registered agent. The secret hash is never serialized.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Agent {
    pub client_id: String,
    pub client_name: Option<String>,
    #[serde(skip)]
    pub secret_hash: Option<[u8; 32]>,
    pub auth_method: String,
    pub application_type: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub scope: Option<String>,
    pub metadata: serde_json::Value,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_seen_at: Option<Millis>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub revoked_at: Option<Millis>,
    /// When the person suspended the agent (no new codes, tokens or approvals; its tokens
    /// inactive), until resumed.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub suspended_at: Option<Millis>,
}

impl Agent {
    /// A name for people: the self-asserted client name, or the client id.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }
    pub fn is_public(&self) -> bool {
        self.auth_method == "none"
    }
    /// Whether the person suspended the agent (and has not resumed it).
    pub fn is_suspended(&self) -> bool {
        self.suspended_at.is_some()
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

const COLUMNS: &str = "client_id, client_name, secret_hash, auth_method, application_type, redirect_uris, grant_types, \
                       response_types, scope, metadata, created_at, last_seen_at, revoked_at, suspended_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Agent> {
    let secret: Option<Vec<u8>> = r.get(2)?;
    let metadata: String = r.get(9)?;
    Ok(Agent {
        client_id: r.get(0)?,
        client_name: r.get(1)?,
        secret_hash: secret.and_then(|s| s.try_into().ok()),
        auth_method: r.get(3)?,
        application_type: r.get(4)?,
        redirect_uris: parse_json_list(&r.get::<_, String>(5)?)?,
        grant_types: parse_json_list(&r.get::<_, String>(6)?)?,
        response_types: parse_json_list(&r.get::<_, String>(7)?)?,
        scope: r.get(8)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        created_at: r.get(10)?,
        last_seen_at: r.get(11)?,
        revoked_at: r.get(12)?,
        suspended_at: r.get(13)?,
    })
}

pub fn insert(
    conn: &Connection,
    client_id: &str,
    meta: &ClientMetadata,
    secret: Option<&TokenHash>,
    now: Millis,
) -> rusqlite::Result<()> {
    let metadata = serde_json::Value::Object(meta.extra.clone()).to_string();
    conn.prepare_cached(&format!("INSERT INTO agents ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, NULL)"))?
        .execute(params![
            client_id,
            meta.client_name,
            secret.map(|h| h.0.to_vec()),
            meta.token_endpoint_auth_method,
            meta.application_type,
            json_list(&meta.redirect_uris),
            json_list(&meta.grant_types),
            json_list(&meta.response_types),
            meta.scope,
            metadata,
            now,
        ])?;
    Ok(())
}

pub fn get(conn: &Connection, client_id: &str) -> rusqlite::Result<Option<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agents WHERE client_id = ?1"
    ))?
    .query_row([client_id], from_row)
    .optional()
}

/// How many agents are registered and not revoked.
pub fn count_registered(conn: &Connection) -> rusqlite::Result<usize> {
    conn.prepare_cached("SELECT COUNT(*) FROM agents WHERE revoked_at IS NULL")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Agent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agents ORDER BY created_at, client_id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn touch(conn: &Connection, client_id: &str, now: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE agents SET last_seen_at = ?2 WHERE client_id = ?1 AND (last_seen_at IS NULL OR last_seen_at < ?2)")?
        .execute(params![client_id, now])?;
    Ok(())
}

/// Marks the agent revoked; returns false if it was unknown or already revoked.
pub fn revoke(conn: &Connection, client_id: &str, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE agents SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![client_id, now])?;
    Ok(n == 1)
}

/// Suspends (`Some(now)`) or resumes (`None`) an agent that is not revoked; returns false if it
/// was unknown, revoked, or already so.
pub fn set_suspended(
    conn: &Connection,
    client_id: &str,
    suspended_at: Option<Millis>,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE agents SET suspended_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL \
             AND (suspended_at IS NULL) = (?2 IS NOT NULL)",
        )?
        .execute(params![client_id, suspended_at])?;
    Ok(n == 1)
}
