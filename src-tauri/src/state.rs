//! The one state every command and every live task works on: handles to the running instance's
//! store, authority and vault, and the instance itself until it is stopped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_core::vault::{Vault, VaultStatus};
use gatehouse_core::{Authority, Store};
use gatehouse_server::instance::Instance;
use gatehouse_server::mcp::McpGateway;

/// How long a keyring probe's answer is trusted. A probe writes and deletes a keyring entry (and
/// may make a locked keyring ask for its password), so it is not repeated for every status read.
const VAULT_STATUS_TTL: Duration = Duration::from_secs(300);

/// Who the audit log names as having done what the person did in the app.
pub const BY: &str = "desktop";

/// The running Gatehouse, as the shell sees it.
#[derive(Debug)]
pub struct Desktop {
    pub data_dir: PathBuf,
    pub issuer: String,
    pub authority: Arc<Authority>,
    pub store: Store,
    pub vault: Vault,
    /// The MCP endpoints of the running server: their upstreams' live status.
    pub mcp: McpGateway,
    /// Taken (once) by the shutdown path; `None` afterwards.
    instance: Mutex<Option<Instance>>,
    /// The keyring's state as last probed, and when.
    vault_status: Mutex<Option<(Instant, VaultStatus)>>,
}

impl Desktop {
    pub fn new(instance: Instance) -> Self {
        Self {
            data_dir: instance.data_dir().to_path_buf(),
            issuer: instance.issuer().to_owned(),
            authority: instance.authority().clone(),
            store: instance.store().clone(),
            vault: instance.vault().clone(),
            mcp: instance.mcp().clone(),
            instance: Mutex::new(Some(instance)),
            vault_status: Mutex::new(None),
        }
    }

    /// Whether the vault can reach the keyring: probed at most every few minutes, and again after
    /// [`Desktop::forget_vault_status`].
    pub async fn vault_status(&self) -> VaultStatus {
        let cached = self.vault_status.lock().ok().and_then(|c| c.clone());
        if let Some((at, status)) = cached
            && at.elapsed() < VAULT_STATUS_TTL
        {
            return status;
        }
        let status = self.vault.status().await;
        if let Ok(mut c) = self.vault_status.lock() {
            *c = Some((Instant::now(), status.clone()));
        }
        status
    }

    /// A connection changed: probe the keyring on the next status read.
    pub fn forget_vault_status(&self) {
        if let Ok(mut c) = self.vault_status.lock() {
            *c = None;
        }
    }

    /// The instance to stop, the first time this is called; `None` after (a second Quit, or a
    /// signal during a Quit, must not stop twice).
    pub fn take_instance(&self) -> Option<Instance> {
        self.instance.lock().ok().and_then(|mut i| i.take())
    }
}
