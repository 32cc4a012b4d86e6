//! Desktop notifications (org.freedesktop.Notifications through notify-rust): one per new approval
//! whose kind the settings leave on, with Approve / Deny / Details actions. Each notification is
//! waited on in its own thread; an action decides through the broker with channel `notification`.
//! The `NotificationClosed` that follows an action is not a decision. An approval decided
//! elsewhere closes its notification (`CloseNotification`).

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_core::approvals::{ApprovalView, Decision};
use gatehouse_core::store::approvals::ApprovalStatus;
use notify_rust::{Notification, Timeout};
use tauri::{AppHandle, Manager};

use crate::state::Desktop;
use crate::{describe, ops, windows};

/// The channel the audit log records for decisions made on a notification.
pub const CHANNEL: &str = "notification";

const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";

/// Which kinds of approval raise a notification (from the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyKinds {
    pub consent: bool,
    pub action: bool,
    pub gateway: bool,
}

impl Default for NotifyKinds {
    fn default() -> Self {
        Self {
            consent: true,
            action: true,
            gateway: true,
        }
    }
}

impl From<&gatehouse_core::settings::Settings> for NotifyKinds {
    fn from(s: &gatehouse_core::settings::Settings) -> Self {
        Self {
            consent: s.notify_consent,
            action: s.notify_action,
            gateway: s.notify_gateway,
        }
    }
}

impl NotifyKinds {
    pub fn wants(&self, v: &ApprovalView) -> bool {
        match (v.kind.as_str(), v.via.as_deref()) {
            ("consent", _) => self.consent,
            (_, Some("gateway")) => self.gateway,
            _ => self.action,
        }
    }
}

/// What an action on a notification asks for.
#[derive(Debug, PartialEq, Eq)]
enum Act {
    Approve,
    Deny,
    Details,
    /// Closed, dismissed or timed out: not a decision.
    Nothing,
}

fn act(action: &str) -> Act {
    match action {
        "approve" => Act::Approve,
        "deny" => Act::Deny,
        "default" | "details" => Act::Details,
        _ => Act::Nothing,
    }
}

/// The notifications on screen, by approval id, and which kinds to raise.
#[derive(Debug, Default)]
pub struct Notifier {
    shown: Mutex<HashMap<String, u32>>,
    kinds: Mutex<NotifyKinds>,
}

impl Notifier {
    pub fn set_kinds(&self, kinds: NotifyKinds) {
        if let Ok(mut k) = self.kinds.lock() {
            *k = kinds;
        }
    }

    fn kinds(&self) -> NotifyKinds {
        self.kinds.lock().map(|k| *k).unwrap_or_default()
    }

    fn remember(&self, approval: &str, notification: u32) {
        if let Ok(mut s) = self.shown.lock() {
            s.insert(approval.to_owned(), notification);
        }
    }

    fn forget(&self, approval: &str) -> Option<u32> {
        self.shown.lock().ok().and_then(|mut s| s.remove(approval))
    }
}

/// Raises the notification for a new approval, if its kind is on.
pub fn announce(app: &AppHandle, view: &ApprovalView) {
    if !app.state::<Notifier>().kinds().wants(view) {
        return;
    }
    let (app, view) = (app.clone(), view.clone());
    let spawned = std::thread::Builder::new()
        .name("gatehouse-notification".into())
        .spawn(move || show_and_wait(&app, &view));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a notification thread");
    }
}

fn show_and_wait(app: &AppHandle, view: &ApprovalView) {
    let handle = Notification::new()
        .appname("Gatehouse")
        .summary(&describe::notification_summary(view))
        .body(&describe::notification_body(view))
        .icon("dialog-password")
        .action("approve", "Approve")
        .action("deny", "Deny")
        .action("default", "Details")
        // Stays until acted on or closed: the approval itself expires on its own.
        .timeout(Timeout::Never)
        .show();
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, approval = %view.id, "cannot show a notification");
            return;
        }
    };
    let notifier = app.state::<Notifier>();
    notifier.remember(&view.id, handle.id());
    let id = view.id.clone();
    // Decided while the notification was being shown (before it could be remembered): the live
    // task's close found nothing to close, so close it here.
    let desktop = app.state::<Desktop>();
    let still_pending = tauri::async_runtime::block_on(ops::approval_get(&desktop, id.clone()))
        .map(|a| a.status == ApprovalStatus::Pending)
        .unwrap_or(true);
    if !still_pending {
        close(app, &id);
    }
    // Returns on the first ActionInvoked or NotificationClosed for this notification; a close
    // after an action is never seen here, so it cannot count as a second answer.
    handle.wait_for_action(|action| {
        notifier.forget(&id);
        let decision = match act(action) {
            Act::Approve => Decision::approve(),
            Act::Deny => Decision::deny(),
            Act::Details => {
                windows::request_consent(app, &id);
                windows::show_consent_front(app);
                return;
            }
            Act::Nothing => return,
        };
        let decided = tauri::async_runtime::block_on(ops::decide(&desktop, &id, decision, CHANNEL));
        if let Err(e) = decided {
            tracing::info!(approval = %id, error = %e, "notification decision not taken");
        }
    });
}

/// Closes the notification of an approval decided elsewhere (or expired), if one is shown.
pub fn close(app: &AppHandle, approval: &str) {
    let Some(notification) = app.state::<Notifier>().forget(approval) else {
        return;
    };
    tauri::async_runtime::spawn(async move {
        if let Err(e) = close_notification(notification).await {
            tracing::warn!(error = %e, notification, "cannot close a notification");
        }
    });
}

async fn close_notification(id: u32) -> zbus::Result<()> {
    let bus = zbus::Connection::session().await?;
    bus.call_method(
        Some(BUS_NAME),
        OBJECT_PATH,
        Some(BUS_NAME),
        "CloseNotification",
        &(id,),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approve_and_deny_decide() {
        assert_eq!(act("approve"), Act::Approve);
        assert_eq!(act("deny"), Act::Deny);
        assert_eq!(act("default"), Act::Details);
        assert_eq!(act("__closed"), Act::Nothing);
        assert_eq!(act("something-else"), Act::Nothing);
    }

    #[test]
    fn kinds_follow_the_settings() {
        let mut v = crate::describe::sample_view("action", &[]);
        let kinds = NotifyKinds {
            consent: false,
            action: true,
            gateway: false,
        };
        v.kind = "consent".into();
        assert!(!kinds.wants(&v));
        v.kind = "action".into();
        v.via = Some("ciba".into());
        assert!(kinds.wants(&v));
        v.via = Some("gateway".into());
        assert!(!kinds.wants(&v));
    }
}
