//! The tamper-evident audit log: what is recorded, how rows are chained, how the chain is verified,
//! and how the feed is read back (newest first by keyset, or everything after an id).
//!
//! Each row carries `prev_hash` and `hash = SHA-256(prev_hash || canonical bytes of the row)`.
//! The canonical bytes are length-prefixed fields in a fixed order (see [`row_hash`]), so the hash
//! does not depend on how SQLite or serde happen to format anything.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;

/// What happened. The string forms are stable: the UI and the CLI filter on them. A new kind goes
/// into [`EventKind::ALL`] too (the Activity view's kind filter lists it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AgentRegistered,
    AgentRevoked,
    SettingsChanged,
    ConsentRequested,
    ConsentApproved,
    ConsentDenied,
    ConsentExpired,
    ConsentRemembered,
    CodeIssued,
    TokenIssued,
    TokenRefreshed,
    TokenRevoked,
    CodeReplayed,
    RefreshReuseDetected,
    RequestRejected,
    ActionRequested,
    ActionApproved,
    ActionDenied,
    ActionExpired,
    TokenUsed,
    RuleCreated,
    RuleDeleted,
    RuleHit,
    AgentsPaused,
    AgentsResumed,
    GatewayCall,
    ConnectionAdded,
    ConnectionRemoved,
    AgentSuspended,
    AgentResumed,
    GrantRevoked,
    KillSwitchPulled,
    ConnectionRefreshed,
    ConnectionExpired,
    ConnectionReconnected,
    McpServerAdded,
    McpServerRemoved,
    McpCall,
    McpToolChanged,
    McpToolApproved,
    McpServerExited,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::AgentRegistered,
        EventKind::AgentRevoked,
        EventKind::SettingsChanged,
        EventKind::ConsentRequested,
        EventKind::ConsentApproved,
        EventKind::ConsentDenied,
        EventKind::ConsentExpired,
        EventKind::ConsentRemembered,
        EventKind::CodeIssued,
        EventKind::TokenIssued,
        EventKind::TokenRefreshed,
        EventKind::TokenRevoked,
        EventKind::CodeReplayed,
        EventKind::RefreshReuseDetected,
        EventKind::RequestRejected,
        EventKind::ActionRequested,
        EventKind::ActionApproved,
        EventKind::ActionDenied,
        EventKind::ActionExpired,
        EventKind::TokenUsed,
        EventKind::RuleCreated,
        EventKind::RuleDeleted,
        EventKind::RuleHit,
        EventKind::AgentsPaused,
        EventKind::AgentsResumed,
        EventKind::GatewayCall,
        EventKind::ConnectionAdded,
        EventKind::ConnectionRemoved,
        EventKind::ConnectionRefreshed,
        EventKind::ConnectionExpired,
        EventKind::ConnectionReconnected,
        EventKind::McpServerAdded,
        EventKind::McpServerRemoved,
        EventKind::McpCall,
        EventKind::McpToolChanged,
        EventKind::McpToolApproved,
        EventKind::McpServerExited,
        EventKind::AgentSuspended,
        EventKind::AgentResumed,
        EventKind::GrantRevoked,
        EventKind::KillSwitchPulled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AgentRegistered => "agent.registered",
            EventKind::AgentRevoked => "agent.revoked",
            EventKind::SettingsChanged => "settings.changed",
            EventKind::ConsentRequested => "consent.requested",
            EventKind::ConsentApproved => "consent.approved",
            EventKind::ConsentDenied => "consent.denied",
            EventKind::ConsentExpired => "consent.expired",
            EventKind::ConsentRemembered => "consent.remembered",
            EventKind::CodeIssued => "code.issued",
            EventKind::TokenIssued => "token.issued",
            EventKind::TokenRefreshed => "token.refreshed",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::CodeReplayed => "code.replayed",
            EventKind::RefreshReuseDetected => "refresh.reuse_detected",
            EventKind::RequestRejected => "request.rejected",
            EventKind::ActionRequested => "action.requested",
            EventKind::ActionApproved => "action.approved",
            EventKind::ActionDenied => "action.denied",
            EventKind::ActionExpired => "action.expired",
            EventKind::TokenUsed => "token.used",
            EventKind::RuleCreated => "rule.created",
            EventKind::RuleDeleted => "rule.deleted",
            EventKind::RuleHit => "rule.hit",
            EventKind::AgentsPaused => "agents.paused",
            EventKind::AgentsResumed => "agents.resumed",
            EventKind::GatewayCall => "gateway.call",
            EventKind::ConnectionAdded => "connection.added",
            EventKind::ConnectionRemoved => "connection.removed",
            EventKind::AgentSuspended => "agent.suspended",
            EventKind::AgentResumed => "agent.resumed",
            EventKind::GrantRevoked => "grant.revoked",
            EventKind::KillSwitchPulled => "kill_switch.pulled",
            EventKind::ConnectionRefreshed => "connection.refreshed",
            EventKind::ConnectionExpired => "connection.expired",
            EventKind::ConnectionReconnected => "connection.reconnected",
            EventKind::McpServerAdded => "mcp.server_added",
            EventKind::McpServerRemoved => "mcp.server_removed",
            EventKind::McpCall => "mcp.call",
            EventKind::McpToolChanged => "mcp.tool_changed",
            EventKind::McpToolApproved => "mcp.tool_approved",
            EventKind::McpServerExited => "mcp.server_exited",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Rejected => "rejected",
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub outcome: Outcome,
    pub client_id: Option<String>,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        kind: EventKind,
        outcome: Outcome,
        client_id: Option<&str>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            outcome,
            client_id: client_id.map(str::to_owned),
            detail,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Event {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub ts: Millis,
    pub kind: String,
    pub outcome: String,
    pub client_id: Option<String>,
    pub detail: serde_json::Value,
    /// Hex.
    #[serde(serialize_with = "as_hex")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub hash: [u8; 32],
}

fn as_hex<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

/// The hash of the newest row (all zeros for an empty log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub last_id: i64,
    pub hash: [u8; 32],
}

/// The hash of one row given the previous row's hash.
pub fn row_hash(
    prev: &[u8; 32],
    id: i64,
    ts: Millis,
    kind: &str,
    outcome: &str,
    client_id: Option<&str>,
    detail: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(id.to_be_bytes());
    h.update(ts.to_be_bytes());
    for field in [kind, outcome] {
        h.update((field.len() as u32).to_be_bytes());
        h.update(field.as_bytes());
    }
    match client_id {
        None => h.update([0u8]),
        Some(c) => {
            h.update([1u8]);
            h.update((c.len() as u32).to_be_bytes());
            h.update(c.as_bytes());
        }
    }
    h.update((detail.len() as u64).to_be_bytes());
    h.update(detail.as_bytes());
    h.finalize().into()
}

/// Reads the chain head. Call inside the write transaction so no other writer can move it.
pub(crate) fn chain_head(conn: &Connection) -> rusqlite::Result<ChainHead> {
    let row = conn
        .prepare_cached("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .optional()?;
    Ok(match row {
        None => ChainHead {
            last_id: 0,
            hash: [0; 32],
        },
        Some((id, hash)) => ChainHead {
            last_id: id,
            hash: hash.try_into().unwrap_or([0; 32]),
        },
    })
}

/// Appends one event at the head of the chain.
pub(crate) fn append(
    conn: &Connection,
    head: &mut ChainHead,
    now: Millis,
    ev: NewEvent,
) -> rusqlite::Result<Event> {
    let id = head.last_id + 1;
    let detail = ev.detail.to_string();
    let kind = ev.kind.as_str();
    let outcome = ev.outcome.as_str();
    let hash = row_hash(
        &head.hash,
        id,
        now,
        kind,
        outcome,
        ev.client_id.as_deref(),
        &detail,
    );
    conn.prepare_cached(
        "INSERT INTO events (id, ts, kind, outcome, client_id, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![id, now, kind, outcome, ev.client_id, detail, &head.hash[..], &hash[..]])?;
    head.last_id = id;
    head.hash = hash;
    Ok(Event {
        id,
        ts: now,
        kind: kind.to_owned(),
        outcome: outcome.to_owned(),
        client_id: ev.client_id,
        detail: ev.detail,
        hash,
    })
}

const EVENT_COLUMNS: &str = "id, ts, kind, outcome, client_id, detail, hash";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let detail: String = r.get(5)?;
    let hash: Vec<u8> = r.get(6)?;
    Ok(Event {
        id: r.get(0)?,
        ts: r.get(1)?,
        kind: r.get(2)?,
        outcome: r.get(3)?,
        client_id: r.get(4)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        hash: hash.try_into().unwrap_or([0; 32]),
    })
}

/// Events with an id greater than `after`, oldest first.
pub fn events_after(conn: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<Event>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after, limit as i64], event_from_row)?;
    rows.collect()
}

/// Which events a page holds.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub client_id: Option<String>,
    /// Keyset cursor: only events older than this id.
    pub before_id: Option<i64>,
}

/// The newest `limit` events matching `filter`, newest first. Uses the `(client_id, id)` index, so
/// a page costs the same at the millionth event as at the first.
pub fn page(conn: &Connection, filter: &EventFilter, limit: usize) -> rusqlite::Result<Vec<Event>> {
    let before = filter.before_id.unwrap_or(i64::MAX);
    let limit = limit as i64;
    match &filter.client_id {
        Some(client) => {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE client_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![client, before, limit], event_from_row)?;
            rows.collect()
        }
        None => {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![before, limit], event_from_row)?;
            rows.collect()
        }
    }
}

/// Every event kind's name, for the Activity view's kind filter.
pub fn event_kinds() -> Vec<&'static str> {
    EventKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// A page of the Activity view: every filter optional, newest first, keyset by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Any of these kinds (empty: every kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// `ok`, `denied` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// At or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub since: Option<Millis>,
    /// At or before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub until: Option<Millis>,
    /// Words to find in the kind, client id or detail, all of them, whole (`word*` for a prefix);
    /// see [`fts_query`]. Events the background indexer has not reached yet are matched by a scan
    /// with the same rules (see [`query`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Keyset cursor: only events older than this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub before_id: Option<i64>,
    /// Page size, at most [`MAX_PAGE`] (0 means [`DEFAULT_PAGE`]).
    #[serde(default)]
    pub limit: usize,
}

/// The largest page [`query`] returns.
pub const MAX_PAGE: usize = 1000;
/// The page size when a query gives none.
pub const DEFAULT_PAGE: usize = 50;

/// The FTS5 query for what a person typed. Each whitespace-separated chunk must appear, in any
/// order; a chunk is a phrase of its tokens (`alex@contractor.example` finds alex, contractor,
/// example in a row), and a chunk ending in `*` is a prefix (`contr*`). Quoted, so nothing typed
/// is FTS syntax. `None` when there is nothing to look for.
///
/// Whole tokens are the default because FTS5 walks a token's postings newest first and stops
/// after a page (well under a millisecond over a million events), while a prefix merges the
/// postings of every token it covers first: tens of milliseconds when the prefix is common.
pub fn fts_query(text: &str) -> Option<String> {
    TextSearch::parse(text).map(|t| t.fts)
}

/// One chunk of what a person typed: the body (without a trailing `*`) and whether it is a prefix.
fn search_chunks(text: &str) -> impl Iterator<Item = (&str, bool)> {
    text.split_whitespace()
        .filter_map(|chunk| {
            let body = chunk.trim_end_matches('*');
            let prefix = body.len() < chunk.len();
            body.chars()
                .any(|c| c.is_alphanumeric() || c == '_')
                .then_some((body, prefix))
        })
        .take(16)
}

/// A text search, parsed once: the FTS5 query for the indexed events, and the same chunks as
/// folded tokens for matching the events the index has not reached yet ([`TextSearch::matches`]).
#[derive(Debug, Clone)]
struct TextSearch {
    fts: String,
    /// Each chunk's tokens, and whether its last token is a prefix.
    chunks: Vec<(Vec<String>, bool)>,
}

impl TextSearch {
    fn parse(text: &str) -> Option<Self> {
        let mut fts = Vec::new();
        let mut chunks = Vec::new();
        for (body, prefix) in search_chunks(text) {
            let quoted = format!("\"{}\"", body.replace('"', "\"\""));
            fts.push(if prefix { quoted + "*" } else { quoted });
            chunks.push((fold_tokens(body).collect(), prefix));
        }
        (!fts.is_empty()).then(|| TextSearch {
            fts: fts.join(" "),
            chunks,
        })
    }

    /// Whether an event matches, as FTS5 would decide over `events_fts`: every chunk is a phrase
    /// found within one column (kind, client id or detail text), its tokens consecutive, the last
    /// one a prefix when the chunk ends in `*`.
    fn matches(&self, kind: &str, client_id: Option<&str>, detail: &str) -> bool {
        let client_id = client_id.unwrap_or("");
        // Most tail rows match nothing: rule them out without tokenizing when a chunk's longest
        // token is in no column as text. Exact only for ASCII columns (case folds bytewise), so a
        // column with other characters always goes on to the tokenizer.
        let may_hold = |token: &str| {
            [kind, client_id, detail].iter().any(|col| {
                !col.is_ascii()
                    || col
                        .as_bytes()
                        .windows(token.len())
                        .any(|w| w.eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        let ruled_out = self.chunks.iter().any(|(phrase, _)| {
            phrase
                .iter()
                .max_by_key(|t| t.len())
                .is_some_and(|t| t.is_ascii() && !may_hold(t))
        });
        if ruled_out {
            return false;
        }
        let columns: [Vec<String>; 3] = [
            fold_tokens(kind).collect(),
            fold_tokens(client_id).collect(),
            fold_tokens(detail).collect(),
        ];
        self.chunks
            .iter()
            .all(|(phrase, prefix)| columns.iter().any(|col| phrase_in(col, phrase, *prefix)))
    }
}

/// Whether `phrase` occurs in `tokens` as consecutive tokens (the last one as a prefix if asked).
fn phrase_in(tokens: &[String], phrase: &[String], prefix: bool) -> bool {
    let Some((last, head)) = phrase.split_last() else {
        // FTS5 ignores a phrase without tokens.
        return true;
    };
    if tokens.len() < phrase.len() {
        return false;
    }
    tokens.windows(phrase.len()).any(|w| {
        w[..head.len()] == *head
            && if prefix {
                w[head.len()].starts_with(last.as_str())
            } else {
                w[head.len()] == *last
            }
    })
}

/// The tokens of `text` as `events_fts`'s tokenizer (`unicode61 remove_diacritics 2 tokenchars
/// '_'`) makes them: runs of letters, digits and `_`, lower-cased, with the diacritics of Latin
/// letters removed. Matches the tokenizer exactly for ASCII; for other scripts it uses Rust's
/// notion of alphanumeric and lower case, and removes diacritics only from the Latin-1 and
/// Latin Extended-A letters (see [`fold_char`]).
fn fold_tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.chars()
                .flat_map(char::to_lowercase)
                .map(fold_char)
                .collect()
        })
}

/// A lower-case Latin letter without its diacritic (`é` → `e`), or the letter itself.
fn fold_char(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        c => c,
    }
}

/// How many events one indexing step adds to the full-text index at most: a step is one write
/// transaction on the store's writer, so this bounds how long it holds other writes back.
pub const INDEX_BATCH: usize = 5_000;

/// The id up to which every event is in the full-text index (and none after it).
pub fn last_indexed_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT last_indexed_id FROM events_fts_state WHERE only_row = 1")?
        .query_row([], |r| r.get(0))
}

/// How many events the full-text index has not reached yet.
pub fn index_backlog(conn: &Connection) -> rusqlite::Result<i64> {
    let newest: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |r| r.get(0))?;
    Ok((newest - last_indexed_id(conn)?).max(0))
}

/// Adds up to `max` events after [`last_indexed_id`] to the full-text index and moves the mark,
/// in the caller's write transaction (so the two never disagree). Returns how many it indexed.
/// Indexes by id, whichever process appended the events.
pub(crate) fn index_step(conn: &Connection, max: usize) -> rusqlite::Result<usize> {
    let from = last_indexed_id(conn)?;
    let upto: Option<i64> = conn
        .prepare_cached(
            "SELECT MAX(id) FROM (SELECT id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2)",
        )?
        .query_row(params![from, max as i64], |r| r.get(0))?;
    let Some(upto) = upto else { return Ok(0) };
    let n = conn
        .prepare_cached(
            "INSERT INTO events_fts (rowid, kind, client_id, detail) \
             SELECT id, kind, client_id, detail FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id",
        )?
        .execute(params![from, upto])?;
    conn.prepare_cached("UPDATE events_fts_state SET last_indexed_id = ?1 WHERE only_row = 1")?
        .execute([upto])?;
    Ok(n)
}

/// The newest events matching `q`, newest first.
///
/// Each filter picks its index: text search first scans the events the background indexer has not
/// reached yet (ids above [`last_indexed_id`]; normally under a second of events), matching each
/// with the index's rules, then walks the FTS index in descending rowid order below that mark
/// (and stops after a page); one kind walks `(kind, id)`; several kinds walk each kind's index and
/// merge; an agent walks `(client_id, id)`; otherwise the primary key. Time bounds first narrow
/// the ids to walk ([`id_bounds`]), then are checked on the rows walked, as is the outcome.
pub fn query(conn: &Connection, q: &EventQuery) -> rusqlite::Result<Vec<Event>> {
    let limit = match q.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let (after, before) = id_bounds(conn, q.since, q.until)?;
    let before = before.min(q.before_id.unwrap_or(i64::MAX));
    if before <= after.saturating_add(1) {
        return Ok(Vec::new());
    }
    let bounded = EventQuery {
        before_id: Some(before),
        ..q.clone()
    };
    let q = &bounded;
    let text = q.text.as_deref().and_then(TextSearch::parse);
    let mut kinds: Vec<&str> = q.kinds.iter().map(String::as_str).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if text.is_none() && kinds.len() > 1 {
        let mut merged: Vec<Event> = Vec::new();
        for kind in kinds {
            merged.extend(query_one(conn, q, after, None, Some(kind), limit)?);
        }
        merged.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
        merged.truncate(limit);
        return Ok(merged);
    }
    let kind = match kinds.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    match (text, kinds.len()) {
        (Some(t), n) if n > 1 => query_many_kinds_text(conn, q, after, &t, &kinds, limit),
        (t, _) => query_one(conn, q, after, t.as_ref(), kind, limit),
    }
}

/// How far an event's time may fall before an older event's: clocks of different processes, and
/// a write stamped before it waited for another process's lock. Bounds taken from times allow
/// this much; a clock stepped back further than this can hide events from a time filter.
const TS_SKEW_MS: Millis = 3_600_000;

/// The time of the first event at or after `id`.
fn ts_from(conn: &Connection, id: i64) -> rusqlite::Result<Option<Millis>> {
    conn.prepare_cached("SELECT ts FROM events WHERE id >= ?1 ORDER BY id LIMIT 1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// Ids outside which no event of the time range `since..=until` lies: `(after, before)`, both
/// exclusive, found by binary search on the primary key (times rise with ids, up to
/// [`TS_SKEW_MS`]), so a time filter walks only its part of the log. Each bound is an event whose
/// time is beyond the range by more than the skew; every event in the range is on the near side
/// of it.
pub fn id_bounds(
    conn: &Connection,
    since: Option<Millis>,
    until: Option<Millis>,
) -> rusqlite::Result<(i64, i64)> {
    let (mut after, mut before) = (0, i64::MAX);
    if since.is_none() && until.is_none() {
        return Ok((after, before));
    }
    let (first, last): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT MIN(id), MAX(id) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok((after, before));
    };
    let ts = |id| ts_from(conn, id).map(|t| t.unwrap_or(Millis::MAX));
    if let Some(until) = until {
        let limit = until.saturating_add(TS_SKEW_MS);
        if ts(last)? > limit {
            // Invariant: ts(hi) > limit.
            let (mut lo, mut hi) = (first, last);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if ts(mid)? > limit {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            before = hi;
        }
    }
    if let Some(since) = since {
        let limit = since.saturating_sub(TS_SKEW_MS);
        if ts(first)? < limit {
            // Invariant: ts(lo) < limit.
            let (mut lo, mut hi) = (first, last);
            while lo < hi {
                let mid = lo + (hi - lo + 1) / 2;
                if ts(mid)? < limit {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            after = lo;
        }
    }
    Ok((after, before))
}

/// The shared WHERE clauses (besides text and kind), their parameters numbered after those
/// already in `params`.
fn common_filters(
    q: &EventQuery,
    after: i64,
    col: &str,
    clauses: &mut Vec<String>,
    params: &mut Vec<rusqlite::types::Value>,
) {
    use rusqlite::types::Value;
    let mut add = |clause: String, v: Value| {
        params.push(v);
        clauses.push(clause.replace('?', &format!("?{}", params.len())));
    };
    add(
        format!("{col}id < ?"),
        Value::Integer(q.before_id.unwrap_or(i64::MAX)),
    );
    if after > 0 {
        add(format!("{col}id > ?"), Value::Integer(after));
    }
    if let Some(c) = &q.client_id {
        add(format!("{col}client_id = ?"), Value::Text(c.clone()));
    }
    if let Some(o) = &q.outcome {
        add(format!("{col}outcome = ?"), Value::Text(o.clone()));
    }
    if let Some(t) = q.since {
        add(format!("{col}ts >= ?"), Value::Integer(t));
    }
    if let Some(t) = q.until {
        add(format!("{col}ts <= ?"), Value::Integer(t));
    }
}

fn query_one(
    conn: &Connection,
    q: &EventQuery,
    after: i64,
    text: Option<&TextSearch>,
    kind: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    use rusqlite::types::Value;
    if let Some(t) = text {
        return query_text(conn, q, after, t, kind, limit);
    }
    let mut clauses = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    common_filters(q, after, "", &mut clauses, &mut params);
    let index = match kind {
        Some(k) => {
            params.push(Value::Text(k.to_owned()));
            clauses.push(format!("kind = ?{}", params.len()));
            "INDEXED BY events_by_kind"
        }
        None if q.client_id.is_some() => "INDEXED BY events_by_client",
        None => "",
    };
    params.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events {index} WHERE {} ORDER BY id DESC LIMIT ?{}",
        clauses.join(" AND "),
        params.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), event_from_row)?;
    rows.collect()
}

/// Text search: the un-indexed tail (all newer than anything indexed) first, then the index.
fn query_text(
    conn: &Connection,
    q: &EventQuery,
    after: i64,
    text: &TextSearch,
    kind: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    // Read once: the indexer only moves it forward, and the events at or below it are in the
    // index in every later snapshot, so the two halves below never miss or repeat an event.
    let indexed = last_indexed_id(conn)?;
    let before = q.before_id.unwrap_or(i64::MAX);
    let mut out = if before > indexed.saturating_add(1) {
        scan_tail(conn, q, after.max(indexed), text, kind, limit)?
    } else {
        Vec::new()
    };
    let below = before.min(indexed.saturating_add(1));
    if out.len() < limit && below > after.saturating_add(1) {
        let indexed_part = EventQuery {
            before_id: Some(below),
            ..q.clone()
        };
        out.extend(query_fts(
            conn,
            &indexed_part,
            after,
            &text.fts,
            kind,
            limit - out.len(),
        )?);
    }
    Ok(out)
}

/// The newest events above `after` (the index's mark or higher) that match `text` and the other
/// filters, read from `events` and matched one by one. Reads only until the page is full; a page
/// that finds nothing reads the whole tail, which the background indexer keeps to well under a
/// second of events (see [`index_step`]; `admin::events_query` indexes a long tail first).
fn scan_tail(
    conn: &Connection,
    q: &EventQuery,
    after: i64,
    text: &TextSearch,
    kind: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    use rusqlite::types::Value;
    let mut clauses = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    common_filters(q, after, "", &mut clauses, &mut params);
    if let Some(k) = kind {
        params.push(Value::Text(k.to_owned()));
        clauses.push(format!("kind = ?{}", params.len()));
    }
    // The id range keeps it to the tail, whichever index SQLite walks it by.
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY id DESC",
        clauses.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(r) = rows.next()? else { break };
        let matched = text.matches(
            r.get_ref(2)?.as_str().unwrap_or(""),
            r.get_ref(4)?.as_str_or_null().unwrap_or(None),
            r.get_ref(5)?.as_str().unwrap_or(""),
        );
        if matched {
            out.push(event_from_row(r)?);
        }
    }
    Ok(out)
}

/// Text search over the indexed events (ids below `q.before_id`, which the caller keeps at or
/// below the index's mark), walking the FTS index newest first.
fn query_fts(
    conn: &Connection,
    q: &EventQuery,
    after: i64,
    fts: &str,
    kind: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    use rusqlite::types::Value;
    let mut clauses = Vec::new();
    let mut params: Vec<Value> = vec![Value::Text(fts.to_owned())];
    clauses.push("events_fts MATCH ?1".to_owned());
    // The FTS side carries the keyset bound too, so the index scan starts below it.
    params.push(Value::Integer(q.before_id.unwrap_or(i64::MAX)));
    clauses.push(format!("events_fts.rowid < ?{}", params.len()));
    if after > 0 {
        params.push(Value::Integer(after));
        clauses.push(format!("events_fts.rowid > ?{}", params.len()));
    }
    common_filters(q, after, "e.", &mut clauses, &mut params);
    if let Some(k) = kind {
        params.push(Value::Text(k.to_owned()));
        clauses.push(format!("e.kind = ?{}", params.len()));
    }
    params.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT e.id, e.ts, e.kind, e.outcome, e.client_id, e.detail, e.hash \
         FROM events_fts JOIN events e ON e.id = events_fts.rowid \
         WHERE {} ORDER BY events_fts.rowid DESC LIMIT ?{}",
        clauses.join(" AND "),
        params.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), event_from_row)?;
    rows.collect()
}

/// Text search restricted to several kinds: the text search with the kinds checked on each row.
fn query_many_kinds_text(
    conn: &Connection,
    q: &EventQuery,
    after: i64,
    text: &TextSearch,
    kinds: &[&str],
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    let mut out = Vec::with_capacity(limit);
    let mut cursor = q.clone();
    cursor.kinds.clear();
    // Pages of the text search without the kind filter, keeping the wanted kinds, until full.
    loop {
        let page = query_one(conn, &cursor, after, Some(text), None, MAX_PAGE)?;
        let n = page.len();
        let last = page.last().map(|e| e.id);
        out.extend(
            page.into_iter()
                .filter(|e| kinds.contains(&e.kind.as_str()))
                .take(limit - out.len()),
        );
        match last {
            Some(id) if out.len() < limit && n == MAX_PAGE => cursor.before_id = Some(id),
            _ => return Ok(out),
        }
    }
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub events: u64,
    pub last_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad: Option<BadRow>,
}

/// The first row that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub id: i64,
    pub reason: String,
}

/// Walks the whole log in id order and recomputes every hash; stops at the first bad row.
pub fn verify(conn: &Connection) -> rusqlite::Result<Verification> {
    let mut stmt = conn.prepare(
        "SELECT id, ts, kind, outcome, client_id, detail, prev_hash, hash FROM events ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = [0u8; 32];
    let mut expected_id = 1i64;
    let mut count = 0u64;
    let mut last_id = 0;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let bad = |reason: &str| Verification {
            events: count,
            last_id,
            first_bad: Some(BadRow {
                id,
                reason: reason.to_owned(),
            }),
        };
        if id != expected_id {
            return Ok(Verification {
                events: count,
                last_id,
                first_bad: Some(BadRow {
                    id,
                    reason: format!("rows are missing before this one (expected id {expected_id})"),
                }),
            });
        }
        let ts: i64 = r.get(1)?;
        let kind = r.get_ref(2)?.as_str().unwrap_or("");
        let outcome = r.get_ref(3)?.as_str().unwrap_or("");
        let client_id = r.get_ref(4)?.as_str_or_null().unwrap_or(None);
        let detail = r.get_ref(5)?.as_str().unwrap_or("");
        let prev_hash = r.get_ref(6)?.as_blob().unwrap_or(&[]);
        let hash = r.get_ref(7)?.as_blob().unwrap_or(&[]);
        if prev_hash != prev {
            return Ok(bad("prev_hash does not match the previous row's hash"));
        }
        let computed = row_hash(&prev, id, ts, kind, outcome, client_id, detail);
        if hash != computed {
            return Ok(bad("hash does not match the row's contents"));
        }
        prev = computed;
        count += 1;
        last_id = id;
        expected_id += 1;
    }
    Ok(Verification {
        events: count,
        last_id,
        first_bad: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        c
    }

    fn ev(n: u32) -> NewEvent {
        NewEvent::new(
            EventKind::TokenIssued,
            Outcome::Ok,
            Some("agt_1"),
            serde_json::json!({ "n": n }),
        )
    }

    #[test]
    fn a_clean_chain_verifies() {
        let c = db();
        let mut head = chain_head(&c).unwrap();
        for n in 0..10 {
            append(&c, &mut head, 1000 + n as i64, ev(n)).unwrap();
        }
        let v = verify(&c).unwrap();
        assert_eq!(
            v,
            Verification {
                events: 10,
                last_id: 10,
                first_bad: None
            }
        );
    }

    #[test]
    fn tampering_names_the_row() {
        let c = db();
        let mut head = chain_head(&c).unwrap();
        for n in 0..10 {
            append(&c, &mut head, 1000, ev(n)).unwrap();
        }
        c.execute_batch("DROP TRIGGER events_are_append_only_u; UPDATE events SET detail = '{\"n\":99}' WHERE id = 4;").unwrap();
        let v = verify(&c).unwrap();
        assert_eq!(v.first_bad.map(|b| b.id), Some(4));
    }

    #[test]
    fn a_deleted_row_is_found() {
        let c = db();
        let mut head = chain_head(&c).unwrap();
        for n in 0..5 {
            append(&c, &mut head, 1000, ev(n)).unwrap();
        }
        c.execute_batch("DROP TRIGGER events_are_append_only_d; DELETE FROM events WHERE id = 3;")
            .unwrap();
        assert_eq!(verify(&c).unwrap().first_bad.map(|b| b.id), Some(4));
    }

    #[test]
    fn the_log_refuses_updates_and_deletes() {
        let c = db();
        let mut head = chain_head(&c).unwrap();
        append(&c, &mut head, 1, ev(1)).unwrap();
        assert!(c.execute("UPDATE events SET kind = 'x'", []).is_err());
        assert!(c.execute("DELETE FROM events", []).is_err());
    }

    /// The tail scan's matching against FTS5 itself, with `events_fts`'s tokenizer, over the
    /// same rows and searches: they must agree wherever the scan claims to be exact.
    #[test]
    fn the_tail_matcher_agrees_with_fts5() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5 (kind, client_id, detail, \
             tokenize = \"unicode61 remove_diacritics 2 tokenchars '_'\");",
        )
        .unwrap();
        let rows: Vec<(&str, Option<&str>, serde_json::Value)> = vec![
            (
                "gateway.call",
                Some("agt_abc123"),
                serde_json::json!({ "url": "https://api.github.com/repos/x" }),
            ),
            (
                "token.issued",
                Some("agt_beta"),
                serde_json::json!({ "to": "alex@contractor.example" }),
            ),
            (
                "request.rejected",
                None,
                serde_json::json!({ "note": "said \"hi\", then\nleft" }),
            ),
            (
                "consent.approved",
                Some("agt_x_y"),
                serde_json::json!({ "where": "Café Zürich", "who": "ÉCOLE naïve" }),
            ),
            (
                "kill_switch.pulled",
                None,
                serde_json::json!({ "n": 12345, "tags": ["a.b.c", "x_y-z", "Ünïcödé"] }),
            ),
            (
                "action.requested",
                Some("agt_gamma"),
                serde_json::json!({ "text": "Gamma gamma GAMMA rays", "ñ": "señor" }),
            ),
        ];
        for (i, (kind, client, detail)) in rows.iter().enumerate() {
            c.execute(
                "INSERT INTO t (rowid, kind, client_id, detail) VALUES (?1, ?2, ?3, ?4)",
                params![i as i64 + 1, kind, client, detail.to_string()],
            )
            .unwrap();
        }
        let searches = [
            "github",
            "GitHub",
            "api.github.com",
            "api.github.c*",
            "github.api",
            "repos x",
            "alex@contractor.example",
            "contract",
            "contract*",
            "example.contractor",
            "agt_beta",
            "agt_b*",
            "agt_*",
            "agt",
            "said hi",
            "hi then",
            "nleft",
            "\"hi\"",
            "rejected",
            "request.rejected",
            "request",
            "cafe",
            "café",
            "CAFE zurich",
            "zür*",
            "ecole",
            "naive",
            "x_y",
            "x_y-z",
            "x_y z",
            "a.b.c",
            "b.c",
            "c.b",
            "12345",
            "123*",
            "1234",
            "unicode",
            "ünï*",
            "gamma",
            "gamma gamma rays",
            "rays gamma",
            "senor",
            "señ*",
            "kill_switch",
            "kill*",
            "pulled kill_switch",
            "a\"b*",
            "NEAR(a b)",
            "detail:alex",
            "a AND OR NOT",
            "é",
            "call agt_abc123",
            "gateway.call.agt_abc123",
            "https",
            "x",
        ];
        let mut found_some = 0;
        for text in searches {
            let Some(search) = TextSearch::parse(text) else {
                continue;
            };
            let mut stmt = c
                .prepare("SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY rowid")
                .unwrap();
            let by_fts: Vec<i64> = stmt
                .query_map([&search.fts], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let by_scan: Vec<i64> = rows
                .iter()
                .enumerate()
                .filter(|(_, (kind, client, detail))| {
                    search.matches(kind, *client, &detail.to_string())
                })
                .map(|(i, _)| i as i64 + 1)
                .collect();
            assert_eq!(by_scan, by_fts, "{text:?} ({})", search.fts);
            found_some += usize::from(!by_fts.is_empty());
        }
        // Most searches find something, so agreeing is not agreeing on nothing.
        assert!(found_some >= 40, "{found_some}");
    }

    #[test]
    fn pages_are_newest_first_by_keyset() {
        let c = db();
        let mut head = chain_head(&c).unwrap();
        for n in 0..120 {
            let mut e = ev(n);
            if n % 2 == 0 {
                e.client_id = Some("agt_2".into());
            }
            append(&c, &mut head, 1, e).unwrap();
        }
        let f = EventFilter {
            client_id: Some("agt_2".into()),
            before_id: None,
        };
        let p1 = page(&c, &f, 50).unwrap();
        assert_eq!(p1.len(), 50);
        assert_eq!(p1[0].id, 119);
        let f2 = EventFilter {
            before_id: Some(p1[49].id),
            ..f
        };
        let p2 = page(&c, &f2, 50).unwrap();
        assert_eq!(p2[0].id, p1[49].id - 2);
        assert!(p2.iter().all(|e| e.client_id.as_deref() == Some("agt_2")));
    }
}
