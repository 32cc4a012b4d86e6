//! Tauri's build step: reads tauri.conf.json and the capabilities, and generates a permission
//! (`allow-<command>`) for each of the app's own commands. Listing them here switches off Tauri's
//! default of allowing every app command in every window, so each window gets only what its
//! capability file grants (the consent window cannot list agents or flip the kill switch).

/// Every `#[tauri::command]` the shell registers (keep in step with `main.rs`'s handler list).
const COMMANDS: &[&str] = &[
    "status",
    "approvals_pending",
    "approvals_history",
    "approval_get",
    "approval_decide",
    "agents_list",
    "agent_revoke",
    "agent_suspend",
    "grant_revoke",
    "events_page",
    "events_export",
    "event_kinds",
    "rules_list",
    "rule_delete",
    "pause_set",
    "kill_switch",
    "settings_get",
    "settings_set",
    "connections_list",
    "connection_reconnect",
    "connection_connect",
    "connection_add_key",
    "connection_remove",
    "mcp_servers",
    "mcp_tools",
    "mcp_approve_tool",
    "mcp_remove",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri build step failed: {e:#}");
    }
}
