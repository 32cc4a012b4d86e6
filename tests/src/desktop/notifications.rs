//! A test-owned notification daemon: owns `org.freedesktop.Notifications` on the session bus,
//! records every `Notify` call, and answers a notification's action the way a person clicking a
//! button would (`ActionInvoked`, then `NotificationClosed` with reason 2, dismissed).
//!
//! Headless there is no notification daemon at all, so without this the app's `show()` fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// One `Notify` call as the daemon received it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The id the daemon answered with.
    pub id: u32,
    pub app_name: String,
    pub replaces_id: u32,
    pub summary: String,
    pub body: String,
    /// Flat `[key, label, key, label, ...]` as on the wire.
    pub actions: Vec<String>,
    /// Hint values, rendered as text (e.g. `urgency` → `1`).
    pub hints: HashMap<String, String>,
    pub expire_timeout: i32,
    /// Set once the app asked `CloseNotification` for it.
    pub closed_by_app: bool,
}

impl Notification {
    /// `(key, label)` pairs of the actions.
    pub fn action_pairs(&self) -> Vec<(String, String)> {
        self.actions
            .chunks(2)
            .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
            .collect()
    }

    /// The label of action `key`, if offered.
    pub fn action_label(&self, key: &str) -> Option<String> {
        self.action_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, l)| l)
    }
}

#[derive(Debug, Default)]
struct Record {
    next_id: u32,
    notifications: Vec<Notification>,
}

/// The D-Bus object served at `/org/freedesktop/Notifications`.
#[derive(Debug)]
struct Daemon {
    record: Arc<Mutex<Record>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Daemon {
    fn get_capabilities(&self) -> Vec<String> {
        ["actions", "body", "body-markup"]
            .map(str::to_owned)
            .to_vec()
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "gatehouse-e2e".into(),
            "gatehouse".into(),
            "0.1".into(),
            "1.2".into(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        record.next_id += 1;
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            record.next_id
        };
        record.notifications.push(Notification {
            id,
            app_name,
            replaces_id,
            summary,
            body,
            actions,
            hints: hints
                .into_iter()
                .map(|(k, v)| (k, format!("{v:?}")))
                .collect(),
            expire_timeout,
            closed_by_app: false,
        });
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        {
            let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
            for n in record.notifications.iter_mut().filter(|n| n.id == id) {
                n.closed_by_app = true;
            }
        }
        // Reason 3: closed by a call to CloseNotification.
        emitter
            .emit(NAME, "NotificationClosed", &(id, 3u32))
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }
}

/// The running daemon; dropping it releases the bus name.
#[derive(Debug)]
pub struct NotificationDaemon {
    connection: zbus::Connection,
    record: Arc<Mutex<Record>>,
}

impl NotificationDaemon {
    /// Takes `org.freedesktop.Notifications` on the session bus, or panics (for instance when a
    /// real notification daemon already owns it: the tests need theirs).
    pub async fn start() -> NotificationDaemon {
        let record = Arc::new(Mutex::new(Record::default()));
        let daemon = Daemon {
            record: record.clone(),
        };
        let connection = zbus::connection::Builder::session()
            .and_then(|b| b.name(NAME))
            .and_then(|b| b.serve_at(PATH, daemon))
            .expect("session bus connection builder");
        let connection = connection.build().await.unwrap_or_else(|e| {
            panic!("the test notification daemon could not own {NAME} on the session bus: {e}")
        });
        NotificationDaemon { connection, record }
    }

    /// Every `Notify` call so far, oldest first.
    pub fn received(&self) -> Vec<Notification> {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .notifications
            .clone()
    }

    /// Waits up to `timeout` for a notification `pred` accepts.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Notification) -> bool,
    ) -> Notification {
        let what = "a matching Notify call";
        let seen = super::eventually(what, timeout, || async {
            self.received().into_iter().find(|n| pred(n))
        });
        tokio::time::timeout(timeout + Duration::from_secs(1), seen)
            .await
            .unwrap_or_else(|_| panic!("no {what}; received {:#?}", self.received()))
    }

    /// Answers notification `id` as a click on action `key` would: waits `delay` (the app
    /// subscribes to the signal only after `Notify` returns, so an immediate answer is lost),
    /// emits `ActionInvoked(id, key)`, then `NotificationClosed(id, 2)` (dismissed by the user).
    pub async fn invoke_action(&self, id: u32, key: &str, delay: Duration) {
        tokio::time::sleep(delay).await;
        let emitter = SignalEmitter::new(&self.connection, PATH).expect("object path");
        emitter
            .emit(NAME, "ActionInvoked", &(id, key))
            .await
            .expect("emit ActionInvoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
        emitter
            .emit(NAME, "NotificationClosed", &(id, 2u32))
            .await
            .expect("emit NotificationClosed");
    }
}

/// The delay before answering an action, after desktop-testing.md (0.5-1 s works).
pub const ACTION_DELAY: Duration = Duration::from_millis(700);
