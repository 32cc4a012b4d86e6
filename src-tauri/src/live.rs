//! Keeps every window, the tray and the notifications in step with the core: forwards each audit
//! event as it commits (`gatehouse://event`, other processes' writes included), and after any
//! change to approvals or the pause switch re-reads the pending list and tells everyone what
//! changed (`gatehouse://approvals`, `gatehouse://decided`, `gatehouse://status`).

use std::collections::HashSet;

use gatehouse_core::admin;
use gatehouse_core::approvals::{ApprovalNotice, ApprovalView};
use gatehouse_core::audit::Event;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::{Notify, broadcast};

use crate::ops::{self, AppStatus, DecidedNotice};
use crate::state::Desktop;
use crate::{notifications, tray, windows};

pub const EVENT: &str = "gatehouse://event";
pub const APPROVALS: &str = "gatehouse://approvals";
pub const DECIDED: &str = "gatehouse://decided";
pub const STATUS: &str = "gatehouse://status";

/// Asks the live task to re-read everything now.
#[derive(Debug, Default)]
pub struct Poke(Notify);

pub fn poke(app: &AppHandle) {
    app.state::<Poke>().0.notify_one();
}

/// Whether an audit event can change the vault's state (worth probing the keyring again).
fn changes_vault(kind: &str) -> bool {
    kind.starts_with("connection.")
}

/// Whether an audit event can change the pending list or the pause switch.
fn changes_state(kind: &str) -> bool {
    kind.starts_with("consent.")
        || kind.starts_with("action.")
        || changes_vault(kind)
        || matches!(
            kind,
            "agent.revoked"
                | "agent.suspended"
                | "agent.resumed"
                | "agents.paused"
                | "agents.resumed"
                | "kill_switch.pulled"
        )
}

/// What the last refresh saw.
#[derive(Debug, Default)]
struct Seen {
    pending: Vec<ApprovalView>,
    status: Option<AppStatus>,
    started: bool,
}

/// Runs until the store's feed or the broker closes (at shutdown).
pub async fn run(
    app: AppHandle,
    mut notices: broadcast::Receiver<ApprovalNotice>,
    mut feed: broadcast::Receiver<Event>,
) {
    let mut seen = Seen::default();
    let poke = app.state::<Poke>();
    refresh(&app, &mut seen, false).await;
    loop {
        let mut redraw_tray = false;
        tokio::select! {
            notice = notices.recv() => match notice {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            event = feed.recv() => match event {
                Ok(event) => {
                    if let Err(e) = app.emit(EVENT, &event) {
                        tracing::warn!(error = %e, "cannot forward an audit event");
                    }
                    if changes_vault(&event.kind) {
                        app.state::<Desktop>().forget_vault_status();
                    }
                    if !changes_state(&event.kind) {
                        continue;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the live feed fell behind; windows re-read the log");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            // A poke follows a tray click: the tray is redrawn even if nothing changed, so a
            // check mark GTK flipped on a failed pause goes back.
            _ = poke.0.notified() => redraw_tray = true,
        }
        refresh(&app, &mut seen, redraw_tray).await;
    }
}

async fn refresh(app: &AppHandle, seen: &mut Seen, redraw_tray: bool) {
    let desktop = app.state::<Desktop>();
    let pending = match desktop.authority.broker().pending().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the pending approvals");
            return;
        }
    };
    let paused = match admin::is_paused(&desktop.store).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the pause switch");
            return;
        }
    };
    let vault = desktop.vault_status().await;
    let status = ops::app_status(&desktop, paused, pending.len(), vault);

    let before: HashSet<&str> = seen.pending.iter().map(|v| v.id.as_str()).collect();
    let now: HashSet<&str> = pending.iter().map(|v| v.id.as_str()).collect();
    let new: Vec<&ApprovalView> = pending
        .iter()
        .filter(|v| !before.contains(v.id.as_str()))
        .collect();
    let gone: Vec<String> = seen
        .pending
        .iter()
        .filter(|v| !now.contains(v.id.as_str()))
        .map(|v| v.id.clone())
        .collect();
    let list_changed = !new.is_empty() || !gone.is_empty() || !seen.started;
    let paused_changed = seen.status.as_ref().map(|s| s.paused) != Some(paused);

    for id in &gone {
        notifications::close(app, id);
        windows::approval_decided(app, id);
        match ops::approval_get(&desktop, id.clone()).await {
            Ok(a) => emit(
                app,
                DECIDED,
                &DecidedNotice {
                    id: id.clone(),
                    status: a.status,
                    channel: a.channel.unwrap_or_default(),
                },
            ),
            Err(e) => tracing::warn!(approval = %id, error = %e, "cannot read a decided approval"),
        }
    }
    for v in &new {
        notifications::announce(app, v);
        if v.kind == "consent" {
            windows::request_consent(app, &v.id);
        }
    }
    if list_changed {
        emit(app, APPROVALS, &pending);
    }
    if list_changed || paused_changed || redraw_tray {
        tray::update(app, &pending, paused);
    }
    if seen.status.as_ref() != Some(&status) {
        emit(app, STATUS, &status);
        seen.status = Some(status);
    }
    seen.pending = pending;
    seen.started = true;
}

fn emit<T: serde::Serialize + Clone>(app: &AppHandle, name: &str, payload: &T) {
    if let Err(e) = app.emit(name, payload.clone()) {
        tracing::warn!(event = name, error = %e, "cannot emit");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_state_changing_kinds_refresh() {
        for kind in [
            "consent.requested",
            "consent.approved",
            "action.expired",
            "agent.revoked",
            "agents.paused",
            "agents.resumed",
            "agent.suspended",
            "kill_switch.pulled",
            "connection.added",
        ] {
            assert!(changes_state(kind), "{kind}");
        }
        for kind in [
            "token.used",
            "token.issued",
            "gateway.call",
            "rule.hit",
            "agent.registered",
        ] {
            assert!(!changes_state(kind), "{kind}");
        }
    }
}
