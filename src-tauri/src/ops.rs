//! The bodies of the IPC commands: plain async functions over [`Desktop`], so they run (and are
//! tested) without a webview. Each one parses its input, calls `gatehouse-core`, and maps the error;
//! no SQL and no business rules live here.

use gatehouse_core::StoreError;
use gatehouse_core::admin::{self, AgentOverview, ApprovalOverview, RevokeSummary};
use gatehouse_core::approvals::{ApprovalView, Decision, Remember};
use gatehouse_core::audit::{Event, EventFilter};
use gatehouse_core::store::approvals::{self as approval_rows, ApprovalStatus};
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::store::rules::RuleRow;
use gatehouse_core::vault::VaultStatus;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::IpcError;
use crate::state::{BY, Desktop};

/// The channel the audit log records for decisions made in the app's windows.
pub const WINDOW_CHANNEL: &str = "window";

/// The most rows one page or list may ask for.
const MAX_LIMIT: u32 = 1000;

/// What the header and the tray show about the running Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    pub issuer: String,
    pub data_dir: String,
    pub paused: bool,
    pub pending_count: u32,
    pub vault_sealed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub vault_reason: Option<String>,
}

/// The person's answer from the consent window or the Approvals view.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DecisionInput {
    pub approve: bool,
    /// A subset of the requested scopes; absent grants all of them.
    #[serde(default)]
    #[ts(optional)]
    pub scopes: Option<Vec<String>>,
    #[ts(type = "\"once\" | \"1h\" | \"8h\" | \"session\" | \"always\"")]
    pub remember: Remember,
    /// For an action: how many times its token may be used.
    #[serde(default)]
    #[ts(optional)]
    pub uses: Option<u32>,
}

/// `gatehouse://decided`: one approval decided (or expired), and through which channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct DecidedNotice {
    pub id: String,
    #[ts(type = "\"pending\" | \"approved\" | \"denied\" | \"expired\"")]
    pub status: ApprovalStatus,
    pub channel: String,
}

fn check_limit(limit: u32) -> Result<usize, IpcError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(IpcError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    Ok(limit as usize)
}

pub async fn status(d: &Desktop) -> Result<AppStatus, IpcError> {
    let paused = admin::is_paused(&d.store).await?;
    let pending = d.authority.broker().pending().await?;
    let vault = d.vault.status().await;
    Ok(app_status(d, paused, pending.len(), vault))
}

/// Builds the status from what the caller already read (the live task reads these anyway).
pub fn app_status(d: &Desktop, paused: bool, pending: usize, vault: VaultStatus) -> AppStatus {
    let (vault_sealed, vault_reason) = match vault {
        VaultStatus::Unsealed => (false, None),
        VaultStatus::Sealed { reason } => (true, Some(reason)),
    };
    AppStatus {
        issuer: d.issuer.clone(),
        data_dir: d.data_dir.display().to_string(),
        paused,
        pending_count: u32::try_from(pending).unwrap_or(u32::MAX),
        vault_sealed,
        vault_reason,
    }
}

pub async fn approvals_pending(d: &Desktop) -> Result<Vec<ApprovalView>, IpcError> {
    Ok(d.authority.broker().pending().await?)
}

pub async fn approvals_history(d: &Desktop, limit: u32) -> Result<Vec<ApprovalOverview>, IpcError> {
    let limit = check_limit(limit)?;
    Ok(admin::approvals_overview(&d.store, limit, false).await?)
}

pub async fn approval_get(d: &Desktop, id: String) -> Result<ApprovalOverview, IpcError> {
    let lookup = id.clone();
    let row = d
        .store
        .read(move |c| approval_rows::get(c, &lookup).map_err(StoreError::from))
        .await?
        .ok_or_else(|| IpcError::not_found(format!("no approval has the id {id}")))?;
    let view = ApprovalView::from_row(&row)?;
    // The same projection `admin::approvals_overview` makes of each row it lists.
    Ok(ApprovalOverview {
        view,
        status: row.status,
        decided_after_ms: row.decided_at.map(|at| at - row.created_at),
        channel: row.channel,
        decided_at: row.decided_at,
        granted_scopes: row.granted_scopes,
        remember: row.remember,
    })
}

pub async fn approval_decide(
    d: &Desktop,
    id: String,
    decision: DecisionInput,
) -> Result<ApprovalStatus, IpcError> {
    decide(d, &id, decision_from(decision), WINDOW_CHANNEL).await
}

fn decision_from(input: DecisionInput) -> Decision {
    Decision {
        approve: input.approve,
        scopes: input.scopes,
        remember: input.remember,
        uses: input.uses,
    }
}

/// Decides through the broker (first decision wins), for every channel the app has.
pub async fn decide(
    d: &Desktop,
    id: &str,
    decision: Decision,
    channel: &str,
) -> Result<ApprovalStatus, IpcError> {
    let row = d.authority.broker().decide(id, decision, channel).await?;
    Ok(row.status)
}

pub async fn agents_list(d: &Desktop) -> Result<Vec<AgentOverview>, IpcError> {
    let now = d.authority.clock().now();
    Ok(admin::agents_overview(&d.store, now).await?)
}

pub async fn agent_revoke(d: &Desktop, client_id: String) -> Result<RevokeSummary, IpcError> {
    Ok(admin::revoke_agent(&d.store, &client_id, BY).await?)
}

pub async fn events_page(d: &Desktop, query: EventQueryInput) -> Result<Vec<Event>, IpcError> {
    let limit = check_limit(query.limit)?;
    let filter = EventFilter {
        client_id: query.client_id,
        before_id: query.before_id,
    };
    Ok(admin::events_page(&d.store, filter, limit).await?)
}

/// Placeholder until `audit::EventQuery` lands.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EventQueryInput {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub before_id: Option<i64>,
    pub limit: u32,
}

pub async fn rules_list(d: &Desktop) -> Result<Vec<RuleRow>, IpcError> {
    Ok(admin::rules_list(&d.store).await?)
}

pub async fn rule_delete(d: &Desktop, id: i64) -> Result<RuleRow, IpcError> {
    Ok(admin::rule_delete(&d.store, id, BY).await?)
}

/// Pauses or resumes every agent; returns whether Gatehouse is paused now.
pub async fn pause_set(d: &Desktop, paused: bool) -> Result<bool, IpcError> {
    admin::set_paused(&d.store, paused, BY).await?;
    Ok(paused)
}

pub async fn connections_list(d: &Desktop) -> Result<Vec<ConnectionRow>, IpcError> {
    Ok(d.vault.list().await?)
}
