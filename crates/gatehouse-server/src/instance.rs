//! One running Gatehouse over a data dir: the data-dir lock, the store, the authority with its
//! maintenance task, the vault and the loopback HTTP server, started and stopped in order. Both
//! `gatehouse serve` and the desktop app run exactly this; only their approvers differ.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::vault::Vault;
use gatehouse_core::{
    Authority, AuthorityConfig, Clock, DataDirLock, Store, StoreError, StoreOptions, SystemClock,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

use crate::gateway::VaultUpstreams;

/// How long in-flight HTTP requests get to finish after a stop.
pub const DRAIN: Duration = Duration::from_secs(3);

/// What an instance needs to start.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    pub data_dir: PathBuf,
    /// Loopback only; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How long an approval waits for the person before it expires.
    pub approval_timeout: Duration,
    /// How long a write waits for another process's lock before failing as unavailable.
    pub busy_timeout: Duration,
}

/// Why an instance could not start. Nothing is left running or locked after any of these.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another Gatehouse (server or desktop app) holds this data dir. The desktop app hands off
    /// to it rather than failing.
    #[error(
        "another Gatehouse server is already using {}; stop it first or pass a different --data-dir",
        data_dir.display()
    )]
    Locked { data_dir: PathBuf },
    #[error("cannot use the data dir {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to listen on {addr}: Gatehouse listens on loopback only (127.0.0.1 or [::1])"
    )]
    NotLoopback { addr: SocketAddr },
    #[error(
        "cannot listen on {addr}; is another program using that port? \
         Pass --listen 127.0.0.1:0 to pick any free port"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the Gatehouse database in {}", data_dir.display())]
    Open {
        data_dir: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// Why the HTTP server ended when it should not have.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the HTTP server stopped unexpectedly")]
    Stopped,
    #[error("the HTTP server stopped with an error")]
    Failed(#[source] std::io::Error),
    #[error("the HTTP server crashed")]
    Crashed(#[source] JoinError),
}

/// A running Gatehouse. Stop it with [`Instance::shutdown`] (or [`Instance::stop`] to learn how
/// the server ended); dropping it without stopping leaves the lock held until the drop.
#[derive(Debug)]
pub struct Instance {
    data_dir: PathBuf,
    issuer: String,
    local_addr: SocketAddr,
    store: Store,
    authority: Arc<Authority>,
    vault: Vault,
    mcp: crate::mcp::McpGateway,
    maintain: JoinHandle<()>,
    /// `None` once the server task has been awaited to its end.
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop_server: Option<oneshot::Sender<()>>,
    lock: DataDirLock,
}

impl Instance {
    /// Takes the data-dir lock, binds the listener, opens the store and serves.
    pub async fn start(options: InstanceOptions) -> Result<Instance, StartError> {
        Self::start_with(options, |_| {}).await
    }

    /// [`Instance::start`], calling `before_serving` with the authority once everything is open
    /// and before the server takes its first request: approvers subscribe there so they miss
    /// nothing.
    pub async fn start_with(
        options: InstanceOptions,
        before_serving: impl FnOnce(&Arc<Authority>),
    ) -> Result<Instance, StartError> {
        let data_dir = options.data_dir;
        // The lock comes first: a second instance on the same data dir stops here, before touching
        // the port or the database.
        let lock = DataDirLock::acquire(&data_dir).map_err(|e| match e {
            StoreError::Locked(_) => StartError::Locked {
                data_dir: data_dir.clone(),
            },
            StoreError::Io { path, source } => StartError::DataDir { path, source },
            other => StartError::DataDir {
                path: data_dir.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;

        if !options.listen.ip().is_loopback() {
            return Err(StartError::NotLoopback {
                addr: options.listen,
            });
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
        let issuer = crate::issuer_for(local_addr);

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store_options = StoreOptions {
            busy_timeout: options.busy_timeout,
        };
        let store = Store::open(&data_dir, store_options, clock.clone()).map_err(|source| {
            StartError::Open {
                data_dir: data_dir.clone(),
                source,
            }
        })?;
        let mut config = AuthorityConfig::new(issuer.clone());
        config.approval_ttl = options.approval_timeout;
        let authority = Arc::new(Authority::new(store.clone(), clock, config));
        // The gateway reads each connection's secret from the OS keyring per call; a missing or
        // locked keyring seals the vault (503 at the gateway), with no fallback.
        let vault = Vault::with_os_keyring(store.clone());
        // OAuth connections are refreshed before they expire in the background too (the gateway
        // also refreshes on demand); the same vault, so both share its per-connection refresh
        // lock. Stopped with the maintenance task.
        let maintain = tokio::spawn({
            let (authority, vault) = (authority.clone(), vault.clone());
            async move {
                tokio::join!(
                    authority.maintain(),
                    vault.refresh_loop(gatehouse_core::vault::oauth::REFRESH_EVERY)
                );
            }
        });

        before_serving(&authority);

        let upstreams = Arc::new(VaultUpstreams::new(vault.clone()));
        // The configured MCP servers start now, so their tools are known before an agent asks,
        // and servers added, changed or removed by the CLI are followed while serving.
        let mcp = crate::mcp::McpGateway::new(authority.clone(), vault.clone());
        tokio::spawn(mcp.clone().sync_loop());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(
            listener,
            authority.clone(),
            upstreams,
            mcp.clone(),
            async {
                let _ = stop_rx.await;
            },
        ));
        tracing::info!(%issuer, data_dir = %data_dir.display(), "serving");

        Ok(Instance {
            data_dir,
            issuer,
            local_addr,
            store,
            authority,
            vault,
            mcp,
            maintain,
            server: Some(server),
            stop_server: Some(stop_tx),
            lock,
        })
    }

    /// `http://127.0.0.1:PORT` (or `http://[::1]:PORT`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }
    pub fn store(&self) -> &Store {
        &self.store
    }
    /// The vault the gateway reads connection secrets from.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }
    /// The MCP gateway: its upstreams' status.
    pub fn mcp(&self) -> &crate::mcp::McpGateway {
        &self.mcp
    }
    /// The held data-dir lock file.
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    /// Resolves when the HTTP server ends on its own (it should not): to select against a stop
    /// signal. Pending forever once the server has been stopped or has already ended.
    pub async fn server_ended(&mut self) -> ServerError {
        let Some(server) = self.server.as_mut() else {
            return std::future::pending().await;
        };
        let result = server.await;
        self.server = None;
        server_failure(result)
    }

    /// Stops taking requests and lets the ones in flight finish, for at most [`DRAIN`]. The rest of
    /// the instance (store, maintenance, lock) keeps running until [`Instance::stop`].
    pub async fn stop_http(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        match tokio::time::timeout(DRAIN, &mut server).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(result) => Err(server_failure(result)),
            Err(_) => {
                tracing::warn!("requests still running after {DRAIN:?}; closing them");
                server.abort();
                Ok(())
            }
        }
    }

    /// Stops everything in order: the HTTP server (drained), the maintenance task, the last token
    /// uses written, the store closed, the lock released. Returns how the server ended.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        let outcome = self.stop_http().await;
        self.mcp.stop();
        self.maintain.abort();
        // Let the aborted task drop its store handles before closing.
        let _ = (&mut self.maintain).await;
        if let Err(e) = self.authority.flush_usage().await {
            tracing::warn!(error = %e, "could not record the last token uses");
        }
        self.store.close();
        let Instance { lock, .. } = self;
        drop(lock);
        tracing::info!("stopped");
        outcome
    }

    /// [`Instance::stop`], logging a server failure instead of returning it.
    pub async fn shutdown(self) {
        if let Err(e) = self.stop().await {
            tracing::warn!(error = %e, "the HTTP server did not stop cleanly");
        }
    }
}

fn server_failure(result: Result<std::io::Result<()>, JoinError>) -> ServerError {
    match result {
        Ok(Ok(())) => ServerError::Stopped,
        Ok(Err(e)) => ServerError::Failed(e),
        Err(e) => ServerError::Crashed(e),
    }
}
