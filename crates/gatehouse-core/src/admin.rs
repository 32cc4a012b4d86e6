//! Operations the person runs outside the protocol (CLI today, the desktop app later): list
//! agents with what they hold, revoke an agent, read and verify the audit log.

use serde::Serialize;

use crate::approvals::ApprovalView;
use crate::audit::{self, Event, EventFilter, EventKind, NewEvent, Outcome, Verification};
use crate::clock::Millis;
use crate::policy::{self, Lifetime, RuleSpec};
use crate::store::agents::{self, Agent};
use crate::store::approvals::{self as approval_rows, ApprovalStatus, Decided};
use crate::store::grants::{self, Grant};
use crate::store::rules::{self, RuleRow};
use crate::store::tokens::{self, Token};
use crate::store::{Store, StoreError, consents};

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
