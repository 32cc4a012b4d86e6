//! The vault: connected upstream accounts whose secrets live only in the OS keyring (service
//! `gatehouse`, one entry per connection, user `connection:<name>`), with their metadata in SQLite.
//!
//! When the keyring is missing, locked or refuses access the vault is *sealed*: adding a
//! connection and handing out a credential fail with [`VaultError::Sealed`], and nothing ever
//! falls back to storing a secret anywhere else. A secret never reaches SQLite, the audit log,
//! the logs or an error message; in memory it is a [`Secret`], whose `Debug` is redacted.

pub mod oauth;
pub mod providers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::secret::Secret;
use crate::store::connections::{self, ConnectionRow, NewConnection};
use crate::store::{Store, StoreError};

/// The keyring service every Gatehouse entry is filed under.
pub const KEYRING_SERVICE: &str = "gatehouse";
/// The prefix of the keyring user of the entry a probe writes and deletes. Each probe adds a
/// random suffix: with one shared entry, a process deleting it while another writes it makes the
/// Secret Service answer "no such item", which would read as a sealed vault.
const PROBE_USER: &str = "gatehouse:probe";
/// The longest secret accepted (API keys and tokens are far shorter).
pub const MAX_SECRET_LEN: usize = 16 * 1024;
/// What the person should do when the vault is sealed.
pub const UNSEAL_HINT: &str =
    "unlock your keyring (gnome-keyring/KWallet/macOS Keychain) and retry";

/// Why a credential store refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The store is missing, locked or refuses access.
    #[error("{0}")]
    Sealed(String),
    /// The store answered, but not usefully (the text never contains a secret).
    #[error("{0}")]
    Other(String),
}

/// Where connection secrets are kept. Blocking: the vault calls it from `spawn_blocking`.
pub trait CredentialStore: Send + Sync + std::fmt::Debug {
    /// Stores (or replaces) the secret of `user`.
    fn put(&self, user: &str, secret: &Secret) -> Result<(), CredentialError>;
    /// The secret of `user`, or `None` when there is no entry.
    fn get(&self, user: &str) -> Result<Option<Secret>, CredentialError>;
    /// Deletes the entry of `user`; false when there was none.
    fn delete(&self, user: &str) -> Result<bool, CredentialError>;
    /// Checks that the store can be written now (a locked keyring fails here).
    fn probe(&self) -> Result<(), CredentialError>;
}

/// The OS keyring through the `keyring` crate (Secret Service on Linux, Keychain on macOS,
/// Credential Manager on Windows).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyringStore;

impl KeyringStore {
    pub fn new() -> Self {
        Self
    }

    fn entry(user: &str) -> Result<keyring::Entry, CredentialError> {
        keyring::Entry::new(KEYRING_SERVICE, user).map_err(keyring_error)
    }
}

/// Maps a keyring error without ever formatting a payload that could hold a secret.
fn keyring_error(e: keyring::Error) -> CredentialError {
    use keyring::Error as K;
    match e {
        K::PlatformFailure(err) | K::NoStorageAccess(err) => {
            CredentialError::Sealed(format!("the OS keyring is unavailable: {err}"))
        }
        K::NoEntry => CredentialError::Other("the keyring has no such entry".into()),
        K::BadEncoding(_) => CredentialError::Other("the keyring entry is not UTF-8".into()),
        K::TooLong(attr, limit) => CredentialError::Other(format!(
            "the keyring refused the entry: {attr} is longer than {limit}"
        )),
        K::Invalid(attr, why) => {
            CredentialError::Other(format!("the keyring refused the entry: {attr}: {why}"))
        }
        K::Ambiguous(found) => CredentialError::Other(format!(
            "the keyring holds {} entries for one connection; remove the duplicates",
            found.len()
        )),
        _ => CredentialError::Other("the keyring failed".into()),
    }
}

impl CredentialStore for KeyringStore {
    fn put(&self, user: &str, secret: &Secret) -> Result<(), CredentialError> {
        Self::entry(user)?
            .set_password(secret.expose())
            .map_err(keyring_error)
    }

    fn get(&self, user: &str) -> Result<Option<Secret>, CredentialError> {
        match Self::entry(user)?.get_password() {
            Ok(s) => Ok(Some(Secret::from_presented(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn delete(&self, user: &str) -> Result<bool, CredentialError> {
        match Self::entry(user)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn probe(&self) -> Result<(), CredentialError> {
        // A read of a missing entry succeeds even on a locked keyring; a write does not.
        let entry = Self::entry(&format!("{PROBE_USER}:{}", crate::secret::random_id("")))?;
        entry.set_password("probe").map_err(keyring_error)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// An in-memory credential store for tests (never used by the binaries); can be sealed at will.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, String>>,
    sealed: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// Seals (or unseals) the store: every call then fails as a locked keyring would.
    pub fn set_sealed(&self, sealed: bool) {
        self.sealed
            .store(sealed, std::sync::atomic::Ordering::SeqCst);
    }
    /// Whether an entry exists for `user` (for assertions).
    pub fn contains(&self, user: &str) -> bool {
        self.entries.lock().is_ok_and(|e| e.contains_key(user))
    }
    fn open(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, String>>, CredentialError> {
        if self.sealed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CredentialError::Sealed("the test keyring is locked".into()));
        }
        self.entries
            .lock()
            .map_err(|_| CredentialError::Other("poisoned".into()))
    }
}

impl CredentialStore for MemoryStore {
    fn put(&self, user: &str, secret: &Secret) -> Result<(), CredentialError> {
        self.open()?
            .insert(user.to_owned(), secret.expose().to_owned());
        Ok(())
    }
    fn get(&self, user: &str) -> Result<Option<Secret>, CredentialError> {
        Ok(self.open()?.get(user).map(Secret::from_presented))
    }
    fn delete(&self, user: &str) -> Result<bool, CredentialError> {
        Ok(self.open()?.remove(user).is_some())
    }
    fn probe(&self) -> Result<(), CredentialError> {
        self.open().map(|_| ())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The keyring is missing, locked or refuses access. Nothing was changed.
    #[error("the vault is sealed: {0}; {UNSEAL_HINT}")]
    Sealed(String),
    #[error("there is no connection named {0:?}; `gatehouse connections list` shows them")]
    UnknownConnection(String),
    /// The connection exists but is expired or disconnected.
    #[error("the connection {name:?} is {status}, not active")]
    NotActive { name: String, status: String },
    #[error("a connection named {0:?} already exists; remove it first or pick another name")]
    AlreadyExists(String),
    #[error("invalid connection: {0}")]
    Invalid(String),
    /// The keyring answered but could not serve the request (e.g. the entry is gone).
    #[error("keyring error: {0}")]
    Keyring(String),
    /// An OAuth provider could not be reached or answered unreadably (no secrets in the text).
    #[error("the provider of the connection could not refresh its token: {0}")]
    Upstream(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for VaultError {
    fn from(e: rusqlite::Error) -> Self {
        VaultError::Store(StoreError::classify(e))
    }
}

impl From<CredentialError> for VaultError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Sealed(why) => VaultError::Sealed(why),
            CredentialError::Other(why) => VaultError::Keyring(why),
        }
    }
}

/// Whether the vault can reach its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VaultStatus {
    Unsealed,
    Sealed { reason: String },
}

/// What the gateway attaches to an upstream request in place of the agent's Authorization.
#[derive(Debug)]
pub struct UpstreamCredential {
    /// `Authorization` for bearer connections; the configured header for API keys.
    pub header_name: String,
    /// The header's whole value (`Bearer ...` for bearer connections).
    pub value: Secret,
}

/// What `remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub connection: ConnectionRow,
    /// False when the keyring had no entry for it any more.
    pub keyring_entry_deleted: bool,
    /// OAuth connections: `ok`, `failed: <reason>` or `not_supported` (RFC 7009 at the provider).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_revocation: Option<String>,
}

/// The vault. Cheap to clone; clones share the per-connection refresh locks.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Store,
    credentials: Arc<dyn CredentialStore>,
    clock: Arc<dyn Clock>,
    /// One refresh at a time per connection: with refresh-token rotation, two concurrent
    /// refreshes would present the same refresh token and the second would expire the connection.
    refresh_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The client for OAuth providers' token and revocation endpoints.
    http: reqwest::Client,
}

/// The keyring user of a connection's entry.
pub fn keyring_user(name: &str) -> String {
    format!("connection:{name}")
}

impl Vault {
    pub fn new(store: Store, credentials: Arc<dyn CredentialStore>) -> Self {
        Self {
            store,
            credentials,
            clock: Arc::new(SystemClock),
            refresh_locks: Arc::default(),
            http: oauth::provider_http(),
        }
    }

    /// The same vault deciding token expiry on `clock` (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The vault over the OS keyring.
    pub fn with_os_keyring(store: Store) -> Self {
        Self::new(store, Arc::new(KeyringStore::new()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn CredentialStore) -> Result<T, CredentialError> + Send + 'static,
    ) -> Result<T, VaultError> {
        let credentials = self.credentials.clone();
        tokio::task::spawn_blocking(move || f(credentials.as_ref()))
            .await
            .map_err(|_| VaultError::Keyring("the keyring call panicked".into()))?
            .map_err(VaultError::from)
    }

    /// Probes the keyring (a write and a delete of a probe entry).
    pub async fn status(&self) -> VaultStatus {
        match self.blocking(|c| c.probe()).await {
            Ok(()) => VaultStatus::Unsealed,
            Err(VaultError::Sealed(reason)) => VaultStatus::Sealed { reason },
            Err(e) => VaultStatus::Sealed {
                reason: e.to_string(),
            },
        }
    }

    /// Adds a connection whose secret is an API key sent in `header_name` (e.g. `X-API-Key`).
    pub async fn add_api_key(
        &self,
        name: &str,
        base_url: &str,
        header_name: &str,
        label: &str,
        secret: Secret,
    ) -> Result<ConnectionRow, VaultError> {
        validate_header_name(header_name)?;
        self.add(name, "api_key", base_url, Some(header_name), label, secret)
            .await
    }

    /// Adds a connection whose secret is a bearer token (sent as `Authorization: Bearer ...`).
    pub async fn add_bearer(
        &self,
        name: &str,
        base_url: &str,
        label: &str,
        secret: Secret,
    ) -> Result<ConnectionRow, VaultError> {
        self.add(name, "bearer", base_url, None, label, secret)
            .await
    }

    async fn add(
        &self,
        name: &str,
        kind: &'static str,
        base_url: &str,
        header_name: Option<&str>,
        label: &str,
        secret: Secret,
    ) -> Result<ConnectionRow, VaultError> {
        validate_name(name)?;
        let (base_url, provider) = validate_base_url(base_url)?;
        validate_label(label)?;
        validate_secret(&secret)?;
        let name = name.to_owned();
        let user = keyring_user(&name);
        let existing = {
            let name = name.clone();
            self.store
                .read(move |c| connections::get(c, &name).map_err(VaultError::from))
                .await?
        };
        if existing.is_some() {
            return Err(VaultError::AlreadyExists(name));
        }
        {
            let user = user.clone();
            self.blocking(move |c| c.put(&user, &secret)).await?;
        }
        let (label, header_name) = (label.to_owned(), header_name.map(str::to_owned));
        let written = {
            let (name, user) = (name.clone(), user.clone());
            self.store
                .write(move |tx| -> Result<ConnectionRow, VaultError> {
                    if connections::get(tx.conn(), &name)?.is_some() {
                        return Err(VaultError::AlreadyExists(name));
                    }
                    let new = NewConnection {
                        name: &name,
                        kind,
                        provider: &provider,
                        label: &label,
                        base_url: &base_url,
                        header_name: header_name.as_deref(),
                        scopes: &[],
                        keyring_ref: &user,
                        expires_at: None,
                    };
                    connections::insert(tx.conn(), &new, tx.now())?;
                    let row = connections::get(tx.conn(), &name)?
                        .ok_or_else(|| VaultError::UnknownConnection(name.clone()))?;
                    tx.append(NewEvent::new(
                        EventKind::ConnectionAdded,
                        Outcome::Ok,
                        None,
                        serde_json::json!({
                            "connection": row.name,
                            "kind": row.kind,
                            "provider": row.provider,
                            "label": row.label,
                            "base_url": row.base_url,
                            "header_name": row.header_name,
                            "keyring_ref": row.keyring_ref,
                        }),
                    ))?;
                    Ok(row)
                })
                .await
        };
        match written {
            Ok(row) => Ok(row),
            // Another process added the same name meanwhile: its secret was just replaced, so
            // leave the entry alone rather than delete the secret its row points at.
            Err(e @ VaultError::AlreadyExists(_)) => Err(e),
            Err(e) => {
                let _ = self.blocking(move |c| c.delete(&user)).await;
                Err(e)
            }
        }
    }

    /// Every connection, by name (metadata only).
    pub async fn list(&self) -> Result<Vec<ConnectionRow>, VaultError> {
        self.store
            .read(|c| connections::list(c).map_err(VaultError::from))
            .await
    }

    /// One connection's metadata.
    pub async fn get(&self, name: &str) -> Result<Option<ConnectionRow>, VaultError> {
        let name = name.to_owned();
        self.store
            .read(move |c| connections::get(c, &name).map_err(VaultError::from))
            .await
    }

    /// Removes a connection: revokes an OAuth connection's tokens at its provider (RFC 7009,
    /// where it has an endpoint), deletes its keyring entry, then its row, audited as
    /// `connection.removed` (with `upstream_revocation` for OAuth). A sealed vault removes
    /// nothing (the secret would be orphaned).
    pub async fn remove(&self, name: &str, by: &str) -> Result<Removed, VaultError> {
        let row = self
            .get(name)
            .await?
            .ok_or_else(|| VaultError::UnknownConnection(name.to_owned()))?;
        let upstream_revocation = if row.kind == "oauth" {
            Some(self.revoke_upstream(&row).await?)
        } else {
            None
        };
        let user = row.keyring_ref.clone();
        let keyring_entry_deleted = self.blocking(move |c| c.delete(&user)).await?;
        let (name, by) = (name.to_owned(), by.to_owned());
        self.store
            .write(move |tx| -> Result<Removed, VaultError> {
                let Some(row) = connections::get(tx.conn(), &name)? else {
                    return Err(VaultError::UnknownConnection(name));
                };
                connections::delete(tx.conn(), &name)?;
                tx.append(NewEvent::new(
                    EventKind::ConnectionRemoved,
                    Outcome::Ok,
                    None,
                    serde_json::json!({
                        "connection": row.name,
                        "kind": row.kind,
                        "provider": row.provider,
                        "keyring_ref": row.keyring_ref,
                        "keyring_entry_deleted": keyring_entry_deleted,
                        "upstream_revocation": upstream_revocation,
                        "by": by,
                    }),
                ))?;
                Ok(Removed {
                    connection: row,
                    keyring_entry_deleted,
                    upstream_revocation,
                })
            })
            .await
    }

    /// The connection and the credential to attach upstream. Fails with
    /// [`VaultError::UnknownConnection`], [`VaultError::NotActive`], [`VaultError::Sealed`]
    /// (answer 503) or [`VaultError::Keyring`] (the entry is gone or unreadable).
    ///
    /// An OAuth connection's access token is refreshed first when it expires within
    /// [`oauth::REFRESH_MARGIN`]; a refused refresh expires the connection ([`VaultError::NotActive`]),
    /// an unreachable provider answers [`VaultError::Upstream`] unless the token is still valid.
    pub async fn credential(
        &self,
        name: &str,
    ) -> Result<(ConnectionRow, UpstreamCredential), VaultError> {
        let row = self
            .get(name)
            .await?
            .ok_or_else(|| VaultError::UnknownConnection(name.to_owned()))?;
        if row.status != "active" {
            return Err(VaultError::NotActive {
                name: row.name,
                status: row.status,
            });
        }
        if row.kind == "oauth" {
            let (row, value) = self.oauth_credential(row).await?;
            return Ok((
                row,
                UpstreamCredential {
                    header_name: "Authorization".into(),
                    value,
                },
            ));
        }
        let user = row.keyring_ref.clone();
        let secret = self.blocking(move |c| c.get(&user)).await?.ok_or_else(|| {
            VaultError::Keyring(format!(
                "the keyring has no entry for the connection {:?}; remove it and add it again",
                row.name
            ))
        })?;
        let credential = match row.kind.as_str() {
            "api_key" => UpstreamCredential {
                header_name: row
                    .header_name
                    .clone()
                    .unwrap_or_else(|| "X-API-Key".into()),
                value: secret,
            },
            _ => UpstreamCredential {
                header_name: "Authorization".into(),
                value: Secret::from_presented(format!("Bearer {}", secret.expose())),
            },
        };
        Ok((row, credential))
    }
}

/// `[a-z0-9-]{1,40}`.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    let ok = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::Invalid(format!(
            "the name {name:?} must be 1 to 40 characters of a-z, 0-9 and -"
        )))
    }
}

/// An absolute http(s) URL with a host and no credentials, query or fragment. Returns it
/// normalized, and its host (the provider of a non-OAuth connection).
fn validate_base_url(raw: &str) -> Result<(String, String), VaultError> {
    let bad = |why: &str| VaultError::Invalid(format!("the URL {raw:?} {why}"));
    let url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host"))?
        .to_owned();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials (the secret goes on stdin, into the keyring)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok((url.to_string(), host))
}

/// An HTTP header name (RFC 9110 token), not one the gateway manages itself.
fn validate_header_name(h: &str) -> Result<(), VaultError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if h.is_empty() || h.len() > 64 || !h.bytes().all(tchar) {
        return Err(VaultError::Invalid(format!(
            "{h:?} is not an HTTP header name (e.g. X-API-Key)"
        )));
    }
    let reserved = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "cookie",
    ];
    if reserved.iter().any(|r| h.eq_ignore_ascii_case(r)) {
        return Err(VaultError::Invalid(format!(
            "{h:?} cannot carry an API key"
        )));
    }
    Ok(())
}

fn validate_label(label: &str) -> Result<(), VaultError> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(VaultError::Invalid(
            "the label must be at most 100 characters without control characters".into(),
        ));
    }
    Ok(())
}

/// Non-empty, bounded, and safe in a header (no control characters). The message never quotes it.
fn validate_secret(secret: &Secret) -> Result<(), VaultError> {
    let s = secret.expose();
    if s.is_empty() {
        return Err(VaultError::Invalid("the secret is empty".into()));
    }
    if s.len() > MAX_SECRET_LEN {
        return Err(VaultError::Invalid(format!(
            "the secret is longer than {MAX_SECRET_LEN} bytes"
        )));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(VaultError::Invalid(
            "the secret contains control characters (a line break?); it must fit in one header"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventFilter;
    use crate::clock::SystemClock;
    use crate::store::StoreOptions;

    const KEY: &str = "sk_live_very_secret_value_123";

    fn vault() -> (tempfile::TempDir, Vault, Arc<MemoryStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(dir.path(), StoreOptions::default(), Arc::new(SystemClock)).expect("store");
        let mem = Arc::new(MemoryStore::new());
        (dir, Vault::new(store, mem.clone()), mem)
    }

    async fn events(v: &Vault) -> Vec<crate::audit::Event> {
        crate::admin::events_page(&v.store, EventFilter::default(), 100)
            .await
            .expect("events")
    }

    #[tokio::test]
    async fn api_key_round_trip_keeps_the_secret_out_of_sqlite() {
        let (dir, v, mem) = vault();
        let row = v
            .add_api_key(
                "weather",
                "https://api.example.com/v1",
                "X-API-Key",
                "work",
                Secret::from_presented(KEY),
            )
            .await
            .expect("add");
        assert_eq!(row.kind, "api_key");
        assert_eq!(row.provider, "api.example.com");
        assert_eq!(row.keyring_ref, "connection:weather");
        assert_eq!(row.status, "active");
        assert!(mem.contains("connection:weather"));

        let (got, cred) = v.credential("weather").await.expect("credential");
        assert_eq!(got.name, "weather");
        assert_eq!(cred.header_name, "X-API-Key");
        assert_eq!(cred.value.expose(), KEY);
        assert!(!format!("{cred:?}").contains(KEY));

        let evs = events(&v).await;
        assert_eq!(evs[0].kind, "connection.added");
        assert!(!serde_json::to_string(&evs).expect("json").contains(KEY));

        let removed = v.remove("weather", "test").await.expect("remove");
        assert!(removed.keyring_entry_deleted);
        assert!(!mem.contains("connection:weather"));
        let evs = events(&v).await;
        assert_eq!(evs[0].kind, "connection.removed");
        assert_eq!(evs[0].detail["keyring_entry_deleted"], true);
        assert!(v.list().await.expect("list").is_empty());

        drop(v);
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).unwrap_or_default();
            assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
        }
    }

    #[tokio::test]
    async fn bearer_credentials_carry_the_scheme() {
        let (_dir, v, _mem) = vault();
        v.add_bearer(
            "gh",
            "https://api.github.com",
            "",
            Secret::from_presented("tok"),
        )
        .await
        .expect("add");
        let (row, cred) = v.credential("gh").await.expect("credential");
        assert_eq!(row.header_name, None);
        assert_eq!(cred.header_name, "Authorization");
        assert_eq!(cred.value.expose(), "Bearer tok");
    }

    #[tokio::test]
    async fn a_sealed_vault_changes_nothing() {
        let (_dir, v, mem) = vault();
        v.add_bearer(
            "gh",
            "https://api.github.com",
            "",
            Secret::from_presented("t"),
        )
        .await
        .expect("add");
        mem.set_sealed(true);
        assert!(matches!(v.status().await, VaultStatus::Sealed { .. }));
        let err = v
            .add_bearer("gl", "https://gitlab.com", "", Secret::from_presented("t"))
            .await
            .expect_err("sealed");
        assert!(matches!(err, VaultError::Sealed(_)), "{err}");
        assert!(err.to_string().contains("unlock your keyring"), "{err}");
        assert!(matches!(
            v.credential("gh").await,
            Err(VaultError::Sealed(_))
        ));
        assert!(matches!(
            v.remove("gh", "test").await,
            Err(VaultError::Sealed(_))
        ));
        assert_eq!(v.list().await.expect("list").len(), 1);
        assert_eq!(events(&v).await.len(), 1);
        mem.set_sealed(false);
        assert_eq!(v.status().await, VaultStatus::Unsealed);
        v.credential("gh").await.expect("unsealed again");
    }

    #[tokio::test]
    async fn refuses_bad_input_and_duplicates() {
        let (_dir, v, mem) = vault();
        let s = || Secret::from_presented("k");
        for (name, url) in [
            ("Bad", "https://x.example"),
            ("", "https://x.example"),
            (&"a".repeat(41), "https://x.example"),
            ("ok", "ftp://x.example"),
            ("ok", "/relative"),
            ("ok", "https://user:pw@x.example"),
            ("ok", "https://x.example/?key=1"),
        ] {
            let r = v.add_bearer(name, url, "", s()).await;
            assert!(matches!(r, Err(VaultError::Invalid(_))), "{name} {url}");
        }
        for header in ["", "X Key", "Host", "X-Key\r\n"] {
            let r = v
                .add_api_key("ok", "https://x.example", header, "", s())
                .await;
            assert!(matches!(r, Err(VaultError::Invalid(_))), "{header:?}");
        }
        for secret in ["", "two\nlines"] {
            let r = v
                .add_bearer(
                    "ok",
                    "https://x.example",
                    "",
                    Secret::from_presented(secret),
                )
                .await;
            let e = r.expect_err("bad secret");
            assert!(!e.to_string().contains("lines"), "{e}");
        }
        assert!(!mem.contains("connection:ok"));
        v.add_bearer("ok", "https://x.example", "", s())
            .await
            .expect("add");
        assert!(matches!(
            v.add_bearer("ok", "https://y.example", "", s()).await,
            Err(VaultError::AlreadyExists(_))
        ));
        assert!(matches!(
            v.credential("nope").await,
            Err(VaultError::UnknownConnection(_))
        ));
        assert!(matches!(
            v.remove("nope", "test").await,
            Err(VaultError::UnknownConnection(_))
        ));
    }

    #[tokio::test]
    async fn a_missing_keyring_entry_is_reported_and_removal_still_works() {
        let (_dir, v, mem) = vault();
        v.add_bearer(
            "gh",
            "https://api.github.com",
            "",
            Secret::from_presented("t"),
        )
        .await
        .expect("add");
        mem.delete("connection:gh").expect("delete");
        assert!(matches!(
            v.credential("gh").await,
            Err(VaultError::Keyring(_))
        ));
        let removed = v.remove("gh", "test").await.expect("remove");
        assert!(!removed.keyring_entry_deleted);
    }
}
