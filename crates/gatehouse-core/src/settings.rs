//! The person's settings for the desktop app (approval timeout, notifications, listen address,
//! start at login), kept in the `settings` table and changed only through [`save`], audited as
//! `settings.changed`.

use std::net::SocketAddr;

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::store::{Store, StoreError};

/// The `settings` key holding [`Settings`] as JSON.
pub const SETTINGS_KEY: &str = "app_settings";

/// The shortest and longest approval timeout the person may choose, in seconds.
pub const APPROVAL_TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 10..=3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// How long an approval waits for the person before it expires (10 to 3600).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub approval_timeout_secs: u64,
    /// Notify on a consent (`/authorize`) approval.
    pub notify_consent: bool,
    /// Notify on an action (CIBA, device) approval.
    pub notify_action: bool,
    /// Notify on a gateway call waiting for approval.
    pub notify_gateway: bool,
    /// Where to listen from the next start (a loopback `IP:PORT`); `None` for the default.
    pub listen: Option<String>,
    pub start_at_login: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            approval_timeout_secs: 120,
            notify_consent: true,
            notify_action: true,
            notify_gateway: true,
            listen: None,
            start_at_login: false,
        }
    }
}

impl Settings {
    /// The listen address, parsed (already validated when saved).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// Why these settings cannot be saved, if they cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !APPROVAL_TIMEOUT_RANGE.contains(&self.approval_timeout_secs) {
            return Err(SettingsError::Invalid(format!(
                "the approval timeout must be between {} and {} seconds",
                APPROVAL_TIMEOUT_RANGE.start(),
                APPROVAL_TIMEOUT_RANGE.end()
            )));
        }
        if let Some(listen) = &self.listen {
            let addr: SocketAddr = listen.trim().parse().map_err(|_| {
                SettingsError::Invalid(format!(
                    "{listen:?} is not an address and port like 127.0.0.1:8737"
                ))
            })?;
            if !addr.ip().is_loopback() {
                return Err(SettingsError::Invalid(format!(
                    "Gatehouse listens on loopback only (127.0.0.1 or [::1]), not {addr}"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for SettingsError {
    fn from(e: rusqlite::Error) -> Self {
        SettingsError::Store(StoreError::classify(e))
    }
}

/// Reads the settings on `conn`; defaults for anything never saved.
pub fn read(conn: &rusqlite::Connection) -> Result<Settings, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([SETTINGS_KEY], |r| r.get(0))
        .optional()?;
    match text {
        None => Ok(Settings::default()),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| StoreError::Corrupt(format!("setting {SETTINGS_KEY}: {e}"))),
    }
}

/// The settings (defaults for anything never saved).
pub async fn load(store: &Store) -> Result<Settings, StoreError> {
    store.read(read).await
}

/// Validates and saves the settings, audited as `settings.changed` with the old and new values.
/// Saving what is already stored writes nothing. Returns the settings as stored (`listen`
/// trimmed, an empty one as `None`). Applying them (the broker's approval timeout) is the
/// caller's part: [`crate::Authority::set_approval_ttl`].
pub async fn save(store: &Store, settings: &Settings, by: &str) -> Result<Settings, SettingsError> {
    let mut new = settings.clone();
    new.listen = new
        .listen
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    new.validate()?;
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<Settings, SettingsError> {
            let old = read(tx.conn())?;
            if old == new {
                return Ok(new);
            }
            let text =
                serde_json::to_string(&new).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.conn()
                .prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute([SETTINGS_KEY, text.as_str()])?;
            tx.append(NewEvent::new(
                EventKind::SettingsChanged,
                Outcome::Ok,
                None,
                serde_json::json!({ "key": SETTINGS_KEY, "old": old, "new": new, "by": by }),
            ))?;
            Ok(new)
        })
        .await
}
