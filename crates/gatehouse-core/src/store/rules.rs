//! Policy rules as stored: who (agent), what (action type or scope pattern), where (resource
//! pattern), the effect, and how long the rule lives. The decision itself is `policy::decide`.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::clock::Millis;

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RuleRow {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// A client id, or `*`.
    pub agent: String,
    /// An action type (`message_send`) or scope (`mail:send`); `*` globs.
    pub action: String,
    /// A resource or URL pattern; `*` globs.
    pub resource: String,
    /// `allow`, `deny` or `ask`.
    pub effect: String,
    /// `once`, `1h`, `8h`, `session` or `always`.
    pub lifetime: String,
    pub session_id: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: Millis,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub expires_at: Option<Millis>,
    pub created_by: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub hits: i64,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_hit_at: Option<Millis>,
}

/// Fields of a new rule.
#[derive(Debug, Clone)]
pub struct NewRule<'a> {
    pub agent: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub effect: &'a str,
    pub lifetime: &'a str,
    pub session_id: Option<&'a str>,
    pub expires_at: Option<Millis>,
    pub created_by: &'a str,
}

const COLUMNS: &str = "id, agent, action, resource, effect, lifetime, session_id, created_at, expires_at, created_by, hits, last_hit_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: r.get(0)?,
        agent: r.get(1)?,
        action: r.get(2)?,
        resource: r.get(3)?,
        effect: r.get(4)?,
        lifetime: r.get(5)?,
        session_id: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        created_by: r.get(9)?,
        hits: r.get(10)?,
        last_hit_at: r.get(11)?,
    })
}

pub fn insert(conn: &Connection, rule: &NewRule<'_>, now: Millis) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rules (agent, action, resource, effect, lifetime, session_id, created_at, expires_at, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        rule.agent,
        rule.action,
        rule.resource,
        rule.effect,
        rule.lifetime,
        rule.session_id,
        now,
        rule.expires_at,
        rule.created_by
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Rules not deleted, oldest first. Expired and other-session rules are included: the policy
/// decides whether a rule is live, so listing and deciding agree.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<RuleRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rules WHERE deleted_at IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<RuleRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rules WHERE id = ?1 AND deleted_at IS NULL"
    ))?
    .query_row([id], from_row)
    .optional()
}

/// Counts a hit; a `once` rule is used up by it.
pub fn record_hit(conn: &Connection, id: i64, now: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE rules SET hits = hits + 1, last_hit_at = ?2, \
         deleted_at = CASE WHEN lifetime = 'once' THEN ?2 ELSE deleted_at END WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Deletes a rule; false if there was no such live rule.
pub fn delete(conn: &Connection, id: i64, now: Millis) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("UPDATE rules SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
        .execute(params![id, now])?;
    Ok(n == 1)
}
