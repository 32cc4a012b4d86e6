//! Remembered consent: what the person allowed an agent "for 1 h / 8 h / this session / always",
//! so a later request it fully covers skips the prompt.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{json_list, parse_json_list, parse_space_list, space_list};
use crate::clock::Millis;
use crate::oauth::scope::is_subset;

#[derive(Debug, Clone, Serialize)]
pub struct Consent {
    pub id: i64,
    pub client_id: String,
    pub redirect_host: String,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub remember: String,
    pub session_id: Option<String>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

/// Fields of a new remembered consent.
#[derive(Debug, Clone)]
pub struct NewConsent<'a> {
    pub client_id: &'a str,
    pub redirect_host: &'a str,
    pub scopes: &'a [String],
    pub resources: &'a [String],
    pub remember: &'a str,
    pub session_id: Option<&'a str>,
    pub expires_at: Option<Millis>,
}

pub fn insert(conn: &Connection, c: &NewConsent<'_>, now: Millis) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO consents (client_id, redirect_host, scopes, resources, remember, session_id, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![c.client_id, c.redirect_host, space_list(c.scopes), json_list(c.resources), c.remember, c.session_id, now, c.expires_at])?;
    Ok(conn.last_insert_rowid())
}

/// A live remembered consent for this agent and redirect host that covers every scope and
/// resource asked for, if there is one.
pub fn find_covering(
    conn: &Connection,
    client_id: &str,
    redirect_host: &str,
    scopes: &[String],
    resources: &[String],
    session_id: &str,
    now: Millis,
) -> rusqlite::Result<Option<Consent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, client_id, redirect_host, scopes, resources, remember, session_id, created_at, expires_at FROM consents \
         WHERE client_id = ?1 AND redirect_host = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?3) \
         AND (session_id IS NULL OR session_id = ?4) ORDER BY id DESC",
    )?;
    let rows = stmt.query_map(params![client_id, redirect_host, now, session_id], |r| {
        Ok(Consent {
            id: r.get(0)?,
            client_id: r.get(1)?,
            redirect_host: r.get(2)?,
            scopes: parse_space_list(&r.get::<_, String>(3)?),
            resources: parse_json_list(&r.get::<_, String>(4)?)?,
            remember: r.get(5)?,
            session_id: r.get(6)?,
            created_at: r.get(7)?,
            expires_at: r.get(8)?,
        })
    })?;
    for c in rows {
        let c = c?;
        if is_subset(scopes, &c.scopes) && is_subset(resources, &c.resources) {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

pub fn revoke_all_for_client(
    conn: &Connection,
    client_id: &str,
    now: Millis,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE consents SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![client_id, now])
}

/// Revokes every remembered consent of every agent (the kill switch). Returns how many.
pub fn revoke_all(conn: &Connection, now: Millis) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE consents SET revoked_at = ?1 WHERE revoked_at IS NULL")?
        .execute(params![now])
}
