//! Grants (one per authorization: a token family) and the authorization codes that start them.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{json_list, parse_json_list, parse_space_list, space_list};
use crate::clock::Millis;
use crate::secret::TokenHash;

/// A grant: what the person allowed one agent in one authorization. Every token descends from one.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Grant {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    pub approval_id: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub consent_id: Option<i64>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub revoked_at: Option<Millis>,
    pub revoked_reason: Option<String>,
    /// RFC 9396 `authorization_details` the person approved (a JSON array), if any.
    pub authorization_details: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, client_id, scopes, resources, approval_id, consent_id, created_at, revoked_at, revoked_reason, authorization_details";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(0)?,
        client_id: r.get(1)?,
        scopes: parse_space_list(&r.get::<_, String>(2)?),
        resources: parse_json_list(&r.get::<_, String>(3)?)?,
        approval_id: r.get(4)?,
        consent_id: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: r.get(7)?,
        revoked_reason: r.get(8)?,
        authorization_details: parse_details(r.get(9)?, 9)?,
    })
}

/// Reads a stored `authorization_details` column (JSON text, or NULL).
pub(crate) fn parse_details(
    text: Option<String>,
    col: usize,
) -> rusqlite::Result<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

/// Records the RFC 9396 `authorization_details` a grant was approved with (call right after
/// [`insert`], in the same transaction).
pub fn set_authorization_details(
    conn: &Connection,
    grant_id: i64,
    details: &serde_json::Value,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE grants SET authorization_details = ?2 WHERE id = ?1")?
        .execute(params![grant_id, details.to_string()])?;
    Ok(())
}

pub fn insert(
    conn: &Connection,
    client_id: &str,
    scopes: &[String],
    resources: &[String],
    approval_id: Option<&str>,
    consent_id: Option<i64>,
    now: Millis,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO grants (client_id, scopes, resources, approval_id, consent_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![client_id, space_list(scopes), json_list(resources), approval_id, consent_id, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Grant>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM grants WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

pub fn list_for_client(conn: &Connection, client_id: &str) -> rusqlite::Result<Vec<Grant>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM grants WHERE client_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([client_id], from_row)?;
    rows.collect()
}

/// Revokes a grant and every token descended from it. Returns how many tokens died.
pub fn revoke_family(
    conn: &Connection,
    grant_id: i64,
    reason: &str,
    now: Millis,
) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE grants SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![grant_id, now, reason])?;
    conn.prepare_cached(
        "UPDATE tokens SET revoked_at = ?2 WHERE grant_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![grant_id, now])
}

/// Revokes every grant and token of an agent. Returns (grants, tokens) revoked.
pub fn revoke_all_for_client(
    conn: &Connection,
    client_id: &str,
    reason: &str,
    now: Millis,
) -> rusqlite::Result<(usize, usize)> {
    let g = conn
        .prepare_cached("UPDATE grants SET revoked_at = ?2, revoked_reason = ?3 WHERE client_id = ?1 AND revoked_at IS NULL")?
        .execute(params![client_id, now, reason])?;
    let t = conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![client_id, now])?;
    Ok((g, t))
}

/// Revokes every grant and every live token (not revoked, rotated or expired) of every agent.
/// Returns (grants, tokens) revoked.
pub fn revoke_everything(
    conn: &Connection,
    reason: &str,
    now: Millis,
) -> rusqlite::Result<(usize, usize)> {
    let g = conn
        .prepare_cached(
            "UPDATE grants SET revoked_at = ?1, revoked_reason = ?2 WHERE revoked_at IS NULL",
        )?
        .execute(params![now, reason])?;
    let t = conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?1 \
             WHERE revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ?1",
        )?
        .execute(params![now])?;
    Ok((g, t))
}

/// A stored authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub grant_id: i64,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: String,
    pub expires_at: Millis,
    pub used_at: Option<Millis>,
}

/// Fields of a new authorization code.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub grant_id: i64,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub redirect_uri_given: bool,
    pub code_challenge: &'a str,
    pub expires_at: Millis,
}

pub fn insert_code(
    conn: &Connection,
    hash: &TokenHash,
    code: &NewCode<'_>,
    now: Millis,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO auth_codes (code_hash, grant_id, client_id, redirect_uri, redirect_uri_given, code_challenge, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![&hash.0[..], code.grant_id, code.client_id, code.redirect_uri, code.redirect_uri_given, code.code_challenge, now, code.expires_at])?;
    Ok(())
}

pub fn get_code(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<AuthCode>> {
    conn.prepare_cached(
        "SELECT grant_id, client_id, redirect_uri, redirect_uri_given, code_challenge, expires_at, used_at FROM auth_codes WHERE code_hash = ?1",
    )?
    .query_row([&hash.0[..]], |r| {
        Ok(AuthCode {
            grant_id: r.get(0)?,
            client_id: r.get(1)?,
            redirect_uri: r.get(2)?,
            redirect_uri_given: r.get(3)?,
            code_challenge: r.get(4)?,
            expires_at: r.get(5)?,
            used_at: r.get(6)?,
        })
    })
    .optional()
}

/// Marks a code used; false if it already was (a concurrent redemption lost the race).
pub fn mark_code_used(conn: &Connection, hash: &TokenHash, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE auth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        )?
        .execute(params![&hash.0[..], now])?;
    Ok(n == 1)
}
