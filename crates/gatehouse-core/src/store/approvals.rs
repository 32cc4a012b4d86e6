//! Approvals as stored: one row per decision Gatehouse needs from the person, pending until decided
//! or expired. Rows survive restarts.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{parse_space_list, space_list};
use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "approved" => ApprovalStatus::Approved,
            "denied" => ApprovalStatus::Denied,
            "expired" => ApprovalStatus::Expired,
            _ => ApprovalStatus::Pending,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub id: String,
    pub kind: String,
    pub client_id: String,
    /// Exactly what the person is shown (and what completing it needs).
    pub request: serde_json::Value,
    #[serde(skip)]
    pub request_hash: [u8; 32],
    pub status: ApprovalStatus,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
    pub channel: Option<String>,
    pub granted_scopes: Option<Vec<String>>,
    pub remember: Option<String>,
    pub completed_at: Option<Millis>,
}

const COLUMNS: &str = "id, kind, client_id, request, request_hash, status, created_at, expires_at, decided_at, channel, granted_scopes, remember, completed_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    let request: String = r.get(3)?;
    let hash: Vec<u8> = r.get(4)?;
    Ok(ApprovalRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        client_id: r.get(2)?,
        request: serde_json::from_str(&request).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        request_hash: hash.try_into().unwrap_or([0; 32]),
        status: ApprovalStatus::parse(r.get_ref(5)?.as_str()?),
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        decided_at: r.get(8)?,
        channel: r.get(9)?,
        granted_scopes: r
            .get::<_, Option<String>>(10)?
            .map(|s| parse_space_list(&s)),
        remember: r.get(11)?,
        completed_at: r.get(12)?,
    })
}

pub fn insert(conn: &Connection, row: &ApprovalRow, request_text: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO approvals ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, NULL, NULL, NULL, NULL, NULL)"
    ))?
    .execute(params![row.id, row.kind, row.client_id, request_text, &row.request_hash[..], row.created_at, row.expires_at])?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ApprovalRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The request text as stored, for checking it still matches its hash.
pub fn request_text(conn: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT request FROM approvals WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<ApprovalRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

/// The newest `limit` approvals, whatever their status, newest first (for `gatehouse approvals`).
pub fn list_recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<ApprovalRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ?1"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], from_row)?;
    rows.collect()
}

/// Pending approvals whose time is up.
pub fn due(conn: &Connection, now: Millis) -> rusqlite::Result<Vec<ApprovalRow>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at"))?;
    let rows = stmt.query_map([now], from_row)?;
    rows.collect()
}

/// The outcome of a decision being written.
#[derive(Debug, Clone)]
pub struct Decided<'a> {
    pub status: ApprovalStatus,
    pub channel: &'a str,
    pub granted_scopes: Option<&'a [String]>,
    pub remember: Option<&'a str>,
}

/// Moves a pending approval to its decision; false if it was no longer pending.
pub fn decide(conn: &Connection, id: &str, d: &Decided<'_>, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE approvals SET status = ?2, decided_at = ?3, channel = ?4, granted_scopes = ?5, remember = ?6 \
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, d.status.as_str(), now, d.channel, d.granted_scopes.map(space_list), d.remember])?;
    Ok(n == 1)
}

/// Marks an approved consent as turned into a code; false if that already happened.
pub fn complete(conn: &Connection, id: &str, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE approvals SET completed_at = ?2 WHERE id = ?1 AND completed_at IS NULL",
        )?
        .execute(params![id, now])?;
    Ok(n == 1)
}
