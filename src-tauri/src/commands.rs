//! The `#[tauri::command]` wrappers: each takes the managed [`Desktop`] and calls its body in
//! [`crate::ops`]. Arguments arrive camelCase from JavaScript (Tauri's default).

use gatehouse_core::admin::{
    AgentOverview, ApprovalOverview, ExportFormat, KillSummary, RevokeSummary,
};
use gatehouse_core::approvals::ApprovalView;
use gatehouse_core::audit::{Event, EventQuery};
use gatehouse_core::settings::Settings;
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::store::rules::RuleRow;
use tauri::{AppHandle, State};

use crate::error::IpcError;
use crate::notifications::Notifier;
use crate::ops::{self, AppStatus, DecisionInput, ExportResult};
use crate::state::Desktop;
use crate::{autostart, notifications};

type Reply<T> = Result<T, IpcError>;

#[tauri::command]
pub async fn status(d: State<'_, Desktop>) -> Reply<AppStatus> {
    ops::status(&d).await
}

#[tauri::command]
pub async fn approvals_pending(d: State<'_, Desktop>) -> Reply<Vec<ApprovalView>> {
    ops::approvals_pending(&d).await
}

#[tauri::command]
pub async fn approvals_history(d: State<'_, Desktop>, limit: u32) -> Reply<Vec<ApprovalOverview>> {
    ops::approvals_history(&d, limit).await
}

#[tauri::command]
pub async fn approval_get(d: State<'_, Desktop>, id: String) -> Reply<ApprovalOverview> {
    ops::approval_get(&d, id).await
}

#[tauri::command]
pub async fn approval_decide(
    d: State<'_, Desktop>,
    id: String,
    decision: DecisionInput,
) -> Reply<ApprovalStatus> {
    ops::approval_decide(&d, id, decision).await
}

#[tauri::command]
pub async fn agents_list(d: State<'_, Desktop>) -> Reply<Vec<AgentOverview>> {
    ops::agents_list(&d).await
}

#[tauri::command]
pub async fn agent_revoke(d: State<'_, Desktop>, client_id: String) -> Reply<RevokeSummary> {
    ops::agent_revoke(&d, client_id).await
}

#[tauri::command]
pub async fn agent_suspend(
    d: State<'_, Desktop>,
    client_id: String,
    suspended: bool,
) -> Reply<AgentOverview> {
    ops::agent_suspend(&d, client_id, suspended).await
}

#[tauri::command]
pub async fn grant_revoke(d: State<'_, Desktop>, grant_id: i64) -> Reply<usize> {
    ops::grant_revoke(&d, grant_id).await
}

#[tauri::command]
pub async fn events_export(
    d: State<'_, Desktop>,
    query: EventQuery,
    format: ExportFormat,
) -> Reply<ExportResult> {
    ops::events_export(&d, query, format).await
}

#[tauri::command]
pub async fn kill_switch(d: State<'_, Desktop>) -> Reply<KillSummary> {
    ops::kill_switch(&d).await
}

#[tauri::command]
pub async fn events_page(d: State<'_, Desktop>, query: EventQuery) -> Reply<Vec<Event>> {
    ops::events_page(&d, query).await
}

#[tauri::command]
pub fn event_kinds() -> Vec<String> {
    ops::event_kinds()
}

#[tauri::command]
pub async fn rules_list(d: State<'_, Desktop>) -> Reply<Vec<RuleRow>> {
    ops::rules_list(&d).await
}

#[tauri::command]
pub async fn rule_delete(d: State<'_, Desktop>, id: i64) -> Reply<RuleRow> {
    ops::rule_delete(&d, id).await
}

#[tauri::command]
pub async fn pause_set(d: State<'_, Desktop>, paused: bool) -> Reply<bool> {
    ops::pause_set(&d, paused).await
}

#[tauri::command]
pub async fn connections_list(d: State<'_, Desktop>) -> Reply<Vec<ops::ConnectionView>> {
    ops::connections_list(&d).await
}

#[tauri::command]
pub async fn settings_get(d: State<'_, Desktop>) -> Reply<Settings> {
    ops::settings_get(&d).await
}

#[tauri::command]
pub async fn settings_set(
    app: AppHandle,
    d: State<'_, Desktop>,
    notifier: State<'_, Notifier>,
    settings: Settings,
) -> Reply<Settings> {
    let saved = ops::settings_set(&d, settings).await?;
    notifier.set_kinds(notifications::NotifyKinds::from(&saved));
    autostart::apply(&app, &d, saved.start_at_login);
    Ok(saved)
}
