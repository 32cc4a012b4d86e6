//! Operations the person runs outside the protocol (CLI today, the desktop app later): list
//! agents with what they hold, revoke an agent, read and verify the audit log.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::approvals::ApprovalView;
use crate::audit::{
    self, Event, EventFilter, EventKind, EventQuery, NewEvent, Outcome, Verification,
};
use crate::clock::Millis;
use crate::policy::{self, Lifetime, RuleSpec};
use crate::store::agents::{self, Agent};
use crate::store::approvals::{self as approval_rows, ApprovalStatus, Decided};
use crate::store::grants::{self, Grant};
use crate::store::rules::{self, RuleRow};
use crate::store::tokens::{self, Token};
use crate::store::{Store, StoreError, WriteTx, consents};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no agent has the client id {0}; `gatehouse agents` lists them")]
    UnknownAgent(String),
    #[error("the agent {0} was already revoked")]
    AlreadyRevoked(String),
    #[error("there is no rule {0}; `gatehouse rules list` shows them")]
    UnknownRule(i64),
    #[error("invalid rule: {0}")]
    InvalidRule(String),
    #[error("{0:?} is not a domain name (e.g. example.com)")]
    InvalidDomain(String),
    #[error("there is no grant {0}; `gatehouse agents` lists each agent's grants")]
    UnknownGrant(i64),
    #[error("the grant {0} was already revoked")]
    GrantAlreadyRevoked(i64),
    #[error("cannot write the export: {0}")]
    Export(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AdminError {
    fn from(e: rusqlite::Error) -> Self {
        AdminError::Store(StoreError::classify(e))
    }
}

/// An agent with what it currently holds.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AgentOverview {
    #[serde(flatten)]
    pub agent: Agent,
    pub grants: Vec<Grant>,
    pub live_tokens: Vec<Token>,
}

pub async fn agents_overview(store: &Store, now: Millis) -> Result<Vec<AgentOverview>, AdminError> {
    store
        .read(move |c| {
            let mut out = Vec::new();
            for agent in agents::list(c)? {
                let grants = grants::list_for_client(c, &agent.client_id)?;
                let live_tokens = tokens::live_for_client(c, &agent.client_id, now)?;
                out.push(AgentOverview {
                    agent,
                    grants,
                    live_tokens,
                });
            }
            Ok(out)
        })
        .await
}

/// What a revocation killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RevokeSummary {
    pub grants: usize,
    pub tokens: usize,
    pub remembered_consents: usize,
    pub pending_approvals_denied: usize,
}

/// Revokes an agent: its registration, every grant and token, remembered consent, and any
/// pending approval, all at once and in one audited transaction.
pub async fn revoke_agent(
    store: &Store,
    client_id: &str,
    by: &str,
) -> Result<RevokeSummary, AdminError> {
    let (id, by) = (client_id.to_owned(), by.to_owned());
    store
        .write(move |tx| -> Result<RevokeSummary, AdminError> {
            let now = tx.now();
            let Some(agent) = agents::get(tx.conn(), &id)? else { return Err(AdminError::UnknownAgent(id)) };
            if agent.revoked_at.is_some() {
                return Err(AdminError::AlreadyRevoked(id));
            }
            agents::revoke(tx.conn(), &id, now)?;
            let (grants, tokens) = grants::revoke_all_for_client(tx.conn(), &id, "agent revoked", now)?;
            let remembered_consents = consents::revoke_all_for_client(tx.conn(), &id, now)?;
            let mut pending_approvals_denied = 0;
            for row in approval_rows::pending(tx.conn())?.into_iter().filter(|r| r.client_id == id) {
                let d = Decided { status: ApprovalStatus::Denied, channel: "revocation", granted_scopes: None, remember: None };
                if approval_rows::decide(tx.conn(), &row.id, &d, now)? {
                    pending_approvals_denied += 1;
                }
            }
            let summary = RevokeSummary { grants, tokens, remembered_consents, pending_approvals_denied };
            tx.append(NewEvent::new(
                EventKind::AgentRevoked,
                Outcome::Ok,
                Some(&id),
                serde_json::json!({ "by": by, "client_name": agent.client_name, "summary": summary }),
            ))?;
            Ok(summary)
        })
        .await
}

/// Denies pending approvals (of one agent, or all) in the caller's transaction, each audited as
/// `consent.denied` / `action.denied` with its id and `channel`, so every approver (in this
/// process or another) learns of it. Returns how many.
fn deny_pending(
    tx: &mut WriteTx<'_>,
    client_id: Option<&str>,
    channel: &'static str,
) -> Result<usize, AdminError> {
    let now = tx.now();
    let mut denied = 0;
    let rows = approval_rows::pending(tx.conn())?;
    for row in rows
        .into_iter()
        .filter(|r| client_id.is_none_or(|c| r.client_id == c))
    {
        let d = Decided {
            status: ApprovalStatus::Denied,
            channel,
            granted_scopes: None,
            remember: None,
        };
        if !approval_rows::decide(tx.conn(), &row.id, &d, now)? {
            continue;
        }
        let kind = if row.kind == "action" {
            EventKind::ActionDenied
        } else {
            EventKind::ConsentDenied
        };
        tx.append(NewEvent::new(
            kind,
            Outcome::Denied,
            Some(&row.client_id),
            serde_json::json!({
                "approval_id": row.id,
                "channel": channel,
                "decision_ms": now - row.created_at,
            }),
        ))?;
        denied += 1;
    }
    Ok(denied)
}

/// Suspends an agent (no new codes, tokens or approvals; its tokens inactive; its pending
/// approvals denied) or resumes it, audited as `agent.suspended` / `agent.resumed`. Its grants and
/// tokens are kept, so resuming restores them. Asking for the state it already is in changes
/// nothing and writes nothing. Returns the agent as it now is.
pub async fn suspend_agent(
    store: &Store,
    client_id: &str,
    suspended: bool,
    by: &str,
) -> Result<Agent, AdminError> {
    let (id, by) = (client_id.to_owned(), by.to_owned());
    store
        .write(move |tx| -> Result<Agent, AdminError> {
            let Some(agent) = agents::get(tx.conn(), &id)? else {
                return Err(AdminError::UnknownAgent(id));
            };
            if agent.revoked_at.is_some() {
                return Err(AdminError::AlreadyRevoked(id));
            }
            if agent.is_suspended() == suspended {
                return Ok(agent);
            }
            let at = suspended.then_some(tx.now());
            agents::set_suspended(tx.conn(), &id, at)?;
            let pending_approvals_denied = if suspended {
                deny_pending(tx, Some(&id), "suspension")?
            } else {
                0
            };
            let kind = if suspended {
                EventKind::AgentSuspended
            } else {
                EventKind::AgentResumed
            };
            tx.append(NewEvent::new(
                kind,
                Outcome::Ok,
                Some(&id),
                serde_json::json!({
                    "by": by,
                    "client_name": agent.client_name,
                    "pending_approvals_denied": pending_approvals_denied,
                }),
            ))?;
            Ok(Agent {
                suspended_at: at,
                ..agent
            })
        })
        .await
}

/// Revokes one grant and every token descended from it, audited as `grant.revoked`. Returns how
/// many tokens died. The agent and its other grants stay.
pub async fn revoke_grant(store: &Store, grant_id: i64, by: &str) -> Result<usize, AdminError> {
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<usize, AdminError> {
            let Some(grant) = grants::get(tx.conn(), grant_id)? else {
                return Err(AdminError::UnknownGrant(grant_id));
            };
            if grant.revoked_at.is_some() {
                return Err(AdminError::GrantAlreadyRevoked(grant_id));
            }
            let tokens = grants::revoke_family(tx.conn(), grant_id, "grant revoked", tx.now())?;
            tx.append(NewEvent::new(
                EventKind::GrantRevoked,
                Outcome::Ok,
                Some(&grant.client_id),
                serde_json::json!({
                    "grant_id": grant_id,
                    "scopes": grant.scopes,
                    "resources": grant.resources,
                    "tokens_revoked": tokens,
                    "by": by,
                }),
            ))?;
            Ok(tokens)
        })
        .await
}

/// What the kill switch stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct KillSummary {
    /// Registered agents, now paused (they stay registered).
    pub agents: usize,
    pub grants: usize,
    /// Live tokens revoked.
    pub tokens: usize,
    pub pending_denied: usize,
}

/// The kill switch: in one transaction, pauses every agent (the pause switch), revokes every
/// grant, live token and remembered consent, and denies every pending approval; audited as
/// `agents.paused` (when it was not paused yet), one denial per approval, and
/// `kill_switch.pulled` with the summary. Agents stay registered; resuming lets them ask again,
/// from nothing. Policy rules stay (the Rules view lists and deletes them).
pub async fn kill_switch(store: &Store, by: &str) -> Result<KillSummary, AdminError> {
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<KillSummary, AdminError> {
            policy::set_paused(tx, true, &by)?;
            let agents = agents::count_registered(tx.conn())?;
            let (grants, tokens) = grants::revoke_everything(tx.conn(), "kill switch", tx.now())?;
            // A remembered consent would hand out a new grant without asking once resumed.
            let remembered_consents = consents::revoke_all(tx.conn(), tx.now())?;
            let pending_denied = deny_pending(tx, None, "kill_switch")?;
            let summary = KillSummary {
                agents,
                grants,
                tokens,
                pending_denied,
            };
            tx.append(NewEvent::new(
                EventKind::KillSwitchPulled,
                Outcome::Ok,
                None,
                serde_json::json!({
                    "by": by,
                    "summary": summary,
                    "remembered_consents": remembered_consents,
                }),
            ))?;
            Ok(summary)
        })
        .await
}

/// An approval as `gatehouse approvals` lists it: what was asked, and what became of it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApprovalOverview {
    #[serde(flatten)]
    pub view: ApprovalView,
    pub status: ApprovalStatus,
    /// Which channel decided (`terminal`, `jsonl`, `timeout`, ...).
    pub channel: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub decided_at: Option<Millis>,
    /// How long the person (or the clock) took to decide.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub decided_after_ms: Option<Millis>,
    pub granted_scopes: Option<Vec<String>>,
    pub remember: Option<String>,
}

/// The newest approvals, newest first; with `pending_only`, only those still waiting.
/// Rows that cannot be presented are left out (and logged), not fatal.
pub async fn approvals_overview(
    store: &Store,
    limit: usize,
    pending_only: bool,
) -> Result<Vec<ApprovalOverview>, StoreError> {
    let rows = store
        .read(move |c| {
            if pending_only {
                let mut rows = approval_rows::pending(c)?;
                rows.reverse();
                rows.truncate(limit);
                Ok(rows)
            } else {
                approval_rows::list_recent(c, limit).map_err(StoreError::from)
            }
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match ApprovalView::from_row(&row) {
            Ok(view) => Some(ApprovalOverview {
                view,
                status: row.status,
                decided_after_ms: row.decided_at.map(|at| at - row.created_at),
                channel: row.channel,
                decided_at: row.decided_at,
                granted_scopes: row.granted_scopes,
                remember: row.remember,
            }),
            Err(e) => {
                tracing::error!(error = %e, "skipping an approval that cannot be presented");
                None
            }
        })
        .collect())
}

/// A page of the audit log, newest first.
pub async fn events_page(
    store: &Store,
    filter: EventFilter,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    store
        .read(move |c| audit::page(c, &filter, limit).map_err(StoreError::from))
        .await
}

/// How many un-indexed events a text search scans at most before it indexes them first. The
/// server's background indexer keeps the tail far shorter; a longer one means events were
/// appended while no server ran (the CLI), and scanning them on every page would cost seconds.
pub const TAIL_SCAN_MAX: i64 = 20_000;

/// Before a text search: when more than [`TAIL_SCAN_MAX`] events are not in the full-text index,
/// indexes them now (in batches, through the writer). When that cannot be done (the database is
/// busy or read-only) the search still scans them: slower, never wrong.
async fn index_long_tail(store: &Store, query: &EventQuery) {
    if query.text.is_none() {
        return;
    }
    if let Err(e) = store.index_events_until(TAIL_SCAN_MAX).await {
        tracing::warn!(error = %e, "could not index audit events before a search; scanning them");
    }
}

/// A page of the Activity view (see [`audit::query`]): newest first, keyset by id.
pub async fn events_query(store: &Store, query: EventQuery) -> Result<Vec<Event>, StoreError> {
    index_long_tail(store, &query).await;
    store
        .read(move |c| audit::query(c, &query).map_err(StoreError::from))
        .await
}

/// How [`export_events`] writes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One event per line, as the IPC and `gatehouse log --json` carry it.
    Jsonl,
    /// RFC 4180: a header row, CRLF line ends, fields quoted when needed; the detail as JSON text.
    Csv,
}

/// The events a page of the export reads at a time.
const EXPORT_PAGE: usize = 1000;

/// Writes every event matching `query` (its `limit` ignored; `before_id` is where it starts) to
/// `out`, newest first, reading a page at a time so memory stays flat however large the log.
/// Returns how many events were written. Runs on the blocking pool.
pub async fn export_events(
    store: &Store,
    query: EventQuery,
    format: ExportFormat,
    out: impl Write + Send + 'static,
) -> Result<u64, AdminError> {
    index_long_tail(store, &query).await;
    let store = store.clone();
    tokio::task::spawn_blocking(move || export_blocking(&store, query, format, out))
        .await
        .map_err(|_| AdminError::Store(StoreError::Closed))?
}

fn export_blocking(
    store: &Store,
    mut query: EventQuery,
    format: ExportFormat,
    out: impl Write,
) -> Result<u64, AdminError> {
    let mut out = std::io::BufWriter::new(out);
    let io = AdminError::Export;
    if format == ExportFormat::Csv {
        out.write_all(b"id,ts,kind,outcome,client_id,detail,hash\r\n")
            .map_err(io)?;
    }
    query.limit = EXPORT_PAGE;
    let mut written = 0u64;
    loop {
        let q = query.clone();
        let page = store.read_blocking(move |c| audit::query(c, &q).map_err(StoreError::from))?;
        for ev in &page {
            match format {
                ExportFormat::Jsonl => {
                    serde_json::to_writer(&mut out, ev)
                        .map_err(|e| AdminError::Export(e.into()))?;
                    out.write_all(b"\n").map_err(io)?;
                }
                ExportFormat::Csv => write_csv_row(&mut out, ev).map_err(io)?,
            }
            written += 1;
        }
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE => query.before_id = Some(last.id),
            _ => break,
        }
    }
    out.flush().map_err(io)?;
    Ok(written)
}

fn write_csv_row(out: &mut impl Write, ev: &Event) -> std::io::Result<()> {
    let fields = [
        ev.id.to_string(),
        ev.ts.to_string(),
        ev.kind.clone(),
        ev.outcome.clone(),
        ev.client_id.clone().unwrap_or_default(),
        ev.detail.to_string(),
        hex::encode(ev.hash),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_field(f).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// One RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF. A field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'` inside quotes.
pub(crate) fn csv_field(f: &str) -> std::borrow::Cow<'_, str> {
    let formula = f.starts_with(['=', '+', '-', '@']);
    if !formula && !f.contains([',', '"', '\r', '\n']) {
        return f.into();
    }
    let body = f.replace('"', "\"\"");
    if formula {
        format!("\"'{body}\"").into()
    } else {
        format!("\"{body}\"").into()
    }
}

/// Checks the whole hash chain.
pub async fn verify_audit(store: &Store) -> Result<Verification, StoreError> {
    store
        .read(|c| audit::verify(c).map_err(StoreError::from))
        .await
}

// ---- policy rules and the pause switch ------------------------------------------------------------

/// Every rule not deleted, oldest first (expired ones included: `expires_at` tells).
pub async fn rules_list(store: &Store) -> Result<Vec<RuleRow>, StoreError> {
    store
        .read(|c| rules::list(c).map_err(StoreError::from))
        .await
}

/// Adds a rule from outside the server (the CLI), audited as `rule.created`. A `session` rule is
/// refused: it lives as long as one server run, and only that server knows its session (it makes
/// them when the person remembers a decision "until restart"). A non-glob agent must be registered.
pub async fn rule_add(store: &Store, spec: RuleSpec, by: &str) -> Result<RuleRow, AdminError> {
    if spec.lifetime == Lifetime::Session {
        return Err(AdminError::InvalidRule(
            "a session rule lasts until the running server stops, so only that server can make one \
             (when you remember a decision until restart); use once, 1h, 8h or always"
                .into(),
        ));
    }
    spec.validate()
        .map_err(|e| AdminError::InvalidRule(e.to_string()))?;
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<RuleRow, AdminError> {
            if !spec.agent.contains('*') && agents::get(tx.conn(), &spec.agent)?.is_none() {
                return Err(AdminError::UnknownAgent(spec.agent.clone()));
            }
            policy::create_rule(tx, &spec, None, &by)?
                .map_err(|e| AdminError::InvalidRule(e.to_string()))
        })
        .await
}

/// Deletes a rule, audited as `rule.deleted`; returns the rule as it was.
pub async fn rule_delete(store: &Store, id: i64, by: &str) -> Result<RuleRow, AdminError> {
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<RuleRow, AdminError> {
            let Some(rule) = rules::get(tx.conn(), id)? else {
                return Err(AdminError::UnknownRule(id));
            };
            if !rules::delete(tx.conn(), id, tx.now())? {
                return Err(AdminError::UnknownRule(id));
            }
            tx.append(NewEvent::new(
                EventKind::RuleDeleted,
                Outcome::Ok,
                (rule.agent != "*").then_some(rule.agent.as_str()),
                serde_json::json!({ "rule": rule, "by": by }),
            ))?;
            Ok(rule)
        })
        .await
}

/// Pauses (every agent stopped: no consent filed, no token issued, introspection inactive) or
/// resumes, audited as `agents.paused` / `agents.resumed`. Returns false when it already was so.
/// A running server sees the change on its next request.
pub async fn set_paused(store: &Store, paused: bool, by: &str) -> Result<bool, StoreError> {
    let by = by.to_owned();
    store
        .write(move |tx| policy::set_paused(tx, paused, &by))
        .await
}

/// Whether Gatehouse is paused.
pub async fn is_paused(store: &Store) -> Result<bool, StoreError> {
    store
        .read(|c| policy::is_paused(c).map_err(StoreError::from))
        .await
}

/// The `settings` key holding the person's own email domains (a JSON array of lower-case domains).
pub const OWN_DOMAINS_KEY: &str = "own_domains";

/// The person's own domains, read on `conn`: recipients outside them are flagged in approvals.
pub fn read_own_domains(conn: &rusqlite::Connection) -> Result<Vec<String>, StoreError> {
    use rusqlite::OptionalExtension;
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([OWN_DOMAINS_KEY], |r| r.get(0))
        .optional()?;
    match v {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("setting {OWN_DOMAINS_KEY}: {e}"))),
    }
}

/// The person's own domains (empty when none are set).
pub async fn own_domains(store: &Store) -> Result<Vec<String>, StoreError> {
    store.read(read_own_domains).await
}

/// Replaces the person's own domains (normalized, deduplicated, sorted), audited as
/// `settings.changed`. Returns the domains as stored.
pub async fn set_own_domains(
    store: &Store,
    domains: &[String],
    by: &str,
) -> Result<Vec<String>, AdminError> {
    let mut normalized: Vec<String> = Vec::with_capacity(domains.len());
    for d in domains {
        let n = crate::oauth::rar::normalize_domain(d)
            .ok_or_else(|| AdminError::InvalidDomain(d.clone()))?;
        if !normalized.contains(&n) {
            normalized.push(n);
        }
    }
    normalized.sort();
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<Vec<String>, AdminError> {
            let old = read_own_domains(tx.conn())?;
            let text = serde_json::to_string(&normalized)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.conn()
                .prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute([OWN_DOMAINS_KEY, text.as_str()])?;
            tx.append(NewEvent::new(
                EventKind::SettingsChanged,
                Outcome::Ok,
                None,
                serde_json::json!({ "key": OWN_DOMAINS_KEY, "old": old, "new": normalized, "by": by }),
            ))?;
            Ok(normalized)
        })
        .await
}
