//! The one state every command and every live task works on: handles to the running instance's
//! store, authority and vault, and the instance itself until it is stopped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gatehouse_core::vault::Vault;
use gatehouse_core::{Authority, Store};
use gatehouse_server::instance::Instance;

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
    /// Taken (once) by the shutdown path; `None` afterwards.
    instance: Mutex<Option<Instance>>,
}

impl Desktop {
    pub fn new(instance: Instance) -> Self {
        Self {
            data_dir: instance.data_dir().to_path_buf(),
            issuer: instance.issuer().to_owned(),
            authority: instance.authority().clone(),
            store: instance.store().clone(),
            vault: instance.vault().clone(),
            instance: Mutex::new(Some(instance)),
        }
    }

    /// The instance to stop, the first time this is called; `None` after (a second Quit, or a
    /// signal during a Quit, must not stop twice).
    pub fn take_instance(&self) -> Option<Instance> {
        self.instance.lock().ok().and_then(|mut i| i.take())
    }
}
