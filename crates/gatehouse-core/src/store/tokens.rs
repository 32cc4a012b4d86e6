//! Access and refresh tokens as stored: SHA-256 hashes only, with their grant, audience and life.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{json_list, parse_json_list, parse_space_list, space_list};
use crate::clock::Millis;
use crate::secret::TokenHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A stored token. `Debug` shows only the short id of the hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Token {
    #[serde(skip)]
    pub hash: TokenHash,
    pub id: String,
    pub kind: TokenKind,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub grant_id: i64,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub expires_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub rotated_at: Option<Millis>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub revoked_at: Option<Millis>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_used_at: Option<Millis>,
    /// Uses left for a use-limited token (an approved action); `None` means unlimited.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub uses_left: Option<i64>,
    /// The RFC 9396 details the token carries, as granted.
    pub authorization_details: Option<serde_json::Value>,
}

impl Token {
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none()
            && self.rotated_at.is_none()
            && now < self.expires_at
            && self.uses_left.is_none_or(|n| n > 0)
    }
}

const COLUMNS: &str = "token_hash, kind, grant_id, client_id, scopes, audience, created_at, expires_at, rotated_at, revoked_at, last_used_at, uses_left, authorization_details";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    let hash: Vec<u8> = r.get(0)?;
    let hash = TokenHash(hash.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "token_hash".into(), rusqlite::types::Type::Blob)
    })?);
    let kind = match r.get_ref(1)?.as_str()? {
        "refresh" => TokenKind::Refresh,
        _ => TokenKind::Access,
    };
    Ok(Token {
        id: hash.id(),
        hash,
        kind,
        grant_id: r.get(2)?,
        client_id: r.get(3)?,
        scopes: parse_space_list(&r.get::<_, String>(4)?),
        audience: parse_json_list(&r.get::<_, String>(5)?)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        rotated_at: r.get(8)?,
        revoked_at: r.get(9)?,
        last_used_at: r.get(10)?,
        uses_left: r.get(11)?,
        authorization_details: r
            .get::<_, Option<String>>(12)?
            .and_then(|s| serde_json::from_str(&s).ok()),
    })
}

/// Fields of a new token.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub kind: TokenKind,
    pub grant_id: i64,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub audience: &'a [String],
    pub expires_at: Millis,
}

pub fn insert(
    conn: &Connection,
    hash: &TokenHash,
    t: &NewToken<'_>,
    now: Millis,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO tokens (token_hash, kind, grant_id, client_id, scopes, audience, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![&hash.0[..], t.kind.as_str(), t.grant_id, t.client_id, space_list(t.scopes), json_list(t.audience), now, t.expires_at])?;
    Ok(())
}

pub fn get(conn: &Connection, hash: &TokenHash) -> rusqlite::Result<Option<Token>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tokens WHERE token_hash = ?1"
    ))?
    .query_row([&hash.0[..]], from_row)
    .optional()
}

/// Live tokens of an agent (not revoked, rotated or expired).
pub fn live_for_client(
    conn: &Connection,
    client_id: &str,
    now: Millis,
) -> rusqlite::Result<Vec<Token>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tokens WHERE client_id = ?1 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ?2 ORDER BY created_at"
    ))?;
    let rows = stmt.query_map(params![client_id, now], from_row)?;
    rows.collect()
}

/// Marks a refresh token as rotated; false if it already was (reuse, or a concurrent refresh).
pub fn mark_rotated(conn: &Connection, hash: &TokenHash, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL",
        )?
        .execute(params![&hash.0[..], now])?;
    Ok(n == 1)
}

pub fn revoke(conn: &Connection, hash: &TokenHash, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![&hash.0[..], now])?;
    Ok(n == 1)
}

/// Records the RFC 9396 `authorization_details` a token carries (its grant's; call right after
/// [`insert`], in the same transaction).
pub fn set_authorization_details(
    conn: &Connection,
    hash: &TokenHash,
    details: &serde_json::Value,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tokens SET authorization_details = ?2 WHERE token_hash = ?1")?
        .execute(params![&hash.0[..], details.to_string()])?;
    Ok(())
}

/// Records when a token was last used (batched by the caller; no audit event per use).
pub fn record_use(conn: &Connection, hash: &TokenHash, at: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE token_hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)")?
        .execute(params![&hash.0[..], at])?;
    Ok(())
}
