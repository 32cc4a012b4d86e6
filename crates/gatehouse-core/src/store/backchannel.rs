//! CIBA `auth_req_id`s and RFC 8628 device codes as stored: only their SHA-256, the client and the
//! approval they wait on, and the polling bookkeeping. Also the few token and grant writes that
//! only action tokens need (authorization details, a use limit).

use rusqlite::{Connection, OptionalExtension, params};

use super::{json_list, space_list};
use crate::clock::Millis;
use crate::secret::TokenHash;

/// Which protocol filed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackchannelKind {
    Ciba,
    Device,
}

impl BackchannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackchannelKind::Ciba => "ciba",
            BackchannelKind::Device => "device",
        }
    }
}

/// A stored request.
#[derive(Debug, Clone)]
pub struct BackchannelRow {
    pub kind: String,
    pub client_id: String,
    pub approval_id: String,
    pub user_code: Option<String>,
    pub interval_ms: i64,
    pub last_poll_at: Option<Millis>,
    pub expires_at: Millis,
    pub redeemed_at: Option<Millis>,
}

/// Fields of a new request.
#[derive(Debug, Clone)]
pub struct NewBackchannel<'a> {
    pub kind: BackchannelKind,
    pub client_id: &'a str,
    pub approval_id: &'a str,
    pub user_code: Option<&'a str>,
    pub interval_ms: i64,
    pub expires_at: Millis,
}

pub fn insert(conn: &Connection, hash: &TokenHash, r: &NewBackchannel<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO backchannel_requests (handle_hash, kind, client_id, approval_id, user_code, interval_ms, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![&hash.0[..], r.kind.as_str(), r.client_id, r.approval_id, r.user_code, r.interval_ms, r.expires_at])?;
    Ok(())
}

pub fn get(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<BackchannelRow>> {
    conn.prepare_cached(
        "SELECT kind, client_id, approval_id, user_code, interval_ms, last_poll_at, expires_at, redeemed_at \
         FROM backchannel_requests WHERE handle_hash = ?1",
    )?
    .query_row([&hash.0[..]], |r| {
        Ok(BackchannelRow {
            kind: r.get(0)?,
            client_id: r.get(1)?,
            approval_id: r.get(2)?,
            user_code: r.get(3)?,
            interval_ms: r.get(4)?,
            last_poll_at: r.get(5)?,
            expires_at: r.get(6)?,
            redeemed_at: r.get(7)?,
        })
    })
    .optional()
}

/// Whether a user code is already taken.
pub fn user_code_taken(conn: &Connection, user_code: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM backchannel_requests WHERE user_code = ?1")?
        .query_row([user_code], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Records a poll.
pub fn record_poll(conn: &Connection, hash: &TokenHash, now: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE backchannel_requests SET last_poll_at = ?2 WHERE handle_hash = ?1",
    )?
    .execute(params![&hash.0[..], now])?;
    Ok(())
}

/// Marks a request redeemed; false if it already was.
pub fn redeem(conn: &Connection, hash: &TokenHash, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE backchannel_requests SET redeemed_at = ?2 WHERE handle_hash = ?1 AND redeemed_at IS NULL",
        )?
        .execute(params![&hash.0[..], now])?;
    Ok(n == 1)
}

/// A grant for one approved action, carrying its authorization details.
pub fn insert_action_grant(
    conn: &Connection,
    client_id: &str,
    scopes: &[String],
    resources: &[String],
    approval_id: &str,
    details: Option<&serde_json::Value>,
    now: Millis,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO grants (client_id, scopes, resources, approval_id, consent_id, created_at, authorization_details) \
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
    )?
    .execute(params![client_id, space_list(scopes), json_list(resources), approval_id, now, details.map(|d| d.to_string())])?;
    Ok(conn.last_insert_rowid())
}

/// An access token for an approved action: its details and its use limit (`None`: unlimited).
#[derive(Debug, Clone)]
pub struct ActionToken<'a> {
    pub grant_id: i64,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub audience: &'a [String],
    pub details: Option<&'a serde_json::Value>,
    pub uses: Option<u32>,
    pub expires_at: Millis,
}

pub fn insert_action_token(
    conn: &Connection,
    hash: &TokenHash,
    t: &ActionToken<'_>,
    now: Millis,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scopes, audience, created_at, expires_at, authorization_details, uses_left) \
         VALUES (?1, 'access', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        &hash.0[..],
        t.grant_id,
        t.client_id,
        space_list(t.scopes),
        json_list(t.audience),
        now,
        t.expires_at,
        t.details.map(|d| d.to_string()),
        t.uses
    ])?;
    Ok(())
}

/// Spends one use of a use-limited token. Returns the uses left after it, or `None` if the token
/// had none left (or is not use-limited).
pub fn spend_use(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "UPDATE tokens SET uses_left = uses_left - 1 WHERE token_hash = ?1 AND uses_left > 0 RETURNING uses_left",
    )?
    .query_row([&hash.0[..]], |r| r.get(0))
    .optional()
}

/// The uses the person allowed an approved action (`None`: the default).
pub fn set_granted_uses(
    conn: &Connection,
    approval_id: &str,
    uses: Option<u32>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE approvals SET granted_uses = ?2 WHERE id = ?1")?
        .execute(params![approval_id, uses])?;
    Ok(())
}

pub fn granted_uses(conn: &Connection, approval_id: &str) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached("SELECT granted_uses FROM approvals WHERE id = ?1")?
        .query_row([approval_id], |r| r.get(0))
        .optional()
        .map(Option::flatten)
}
