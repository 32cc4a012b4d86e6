//! The upstream side of one MCP server: Gatehouse's own rmcp client connection to it (a stdio
//! child it starts, with secrets from the vault in its environment, or a Streamable HTTP server
//! with the vault credential), supervised: when it ends it is restarted with backoff, and
//! meanwhile callers get a clean "unavailable" answer. Its tool listings are recorded (pinning).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_core::mcp;
use gatehouse_core::store::Store;
use gatehouse_core::store::mcp::{EnvValue, HTTP, McpServerRow};
use gatehouse_core::vault::Vault;
use rmcp::ClientHandler;
use rmcp::model::{ClientConfig, Implementation, ServerPeerInfo, Tool};
use rmcp::service::{Peer, RoleClient, ServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

/// The first wait before a restart; doubled after each quick failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A server that stayed up this long restarts after [`FIRST_BACKOFF`] again.
const STABLE: Duration = Duration::from_secs(30);
/// How often a running upstream's tools are listed again, so a changed definition is noticed
/// (and held) even while no agent lists them.
pub const RELIST_EVERY: Duration = Duration::from_secs(30);
/// How long the MCP handshake with the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a person (or the desktop view) sees of an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpstreamStatus {
    Starting,
    Running {
        /// The upstream's own name and version, as it announced them.
        server: String,
        since_ms: u64,
    },
    /// Not running; restarting after `retry_in_ms`.
    Down {
        reason: String,
        retry_in_ms: u64,
    },
    Stopped,
}

enum Link {
    Starting,
    Up {
        peer: Peer<RoleClient>,
        info: Option<Arc<ServerPeerInfo>>,
        since: Instant,
    },
    Down {
        reason: String,
        retry_at: Instant,
    },
    Stopped,
}

/// One supervised upstream MCP server.
pub struct Upstream {
    name: String,
    store: Store,
    link: Mutex<Link>,
    /// The tool listing last recorded in the store, as (name, definition hash): a listing that
    /// matches it is not written again.
    recorded: Mutex<Option<Vec<(String, String)>>>,
    /// The tools the upstream listed last.
    tools: Mutex<Arc<Vec<Tool>>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a call cannot reach the upstream now.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

/// Gatehouse's client identity towards upstreams; a changed tool list is re-read at once.
#[derive(Clone)]
struct UpstreamClient {
    upstream: std::sync::Weak<Upstream>,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        let mut c = ClientConfig::default();
        c.client_info = Implementation::new("gatehouse", env!("CARGO_PKG_VERSION"));
        c
    }

    async fn on_tool_list_changed(&self, _ctx: rmcp::service::NotificationContext<RoleClient>) {
        if let Some(u) = self.upstream.upgrade() {
            tokio::spawn(async move {
                let _ = u.list_tools().await;
            });
        }
    }
}

impl Upstream {
    /// Starts supervising the server of `row`; the first connection is made in the background.
    pub fn start(
        row: McpServerRow,
        store: Store,
        vault: Vault,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let u = Arc::new(Self {
            name: row.name.clone(),
            store,
            link: Mutex::new(Link::Starting),
            recorded: Mutex::new(None),
            tools: Mutex::new(Arc::new(Vec::new())),
            cancel,
        });
        tokio::spawn(supervise(u.clone(), row, vault));
        u
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the upstream (a stdio child is shut down) and its supervision.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    pub fn status(&self) -> UpstreamStatus {
        let now = Instant::now();
        match &*self.link.lock().unwrap_or_else(|p| p.into_inner()) {
            Link::Starting => UpstreamStatus::Starting,
            Link::Up { info, since, .. } => UpstreamStatus::Running {
                server: info
                    .as_ref()
                    .and_then(|i| i.server_info.as_ref())
                    .map(|i| format!("{} {}", i.name, i.version))
                    .unwrap_or_default(),
                since_ms: since.elapsed().as_millis() as u64,
            },
            Link::Down { reason, retry_at } => UpstreamStatus::Down {
                reason: reason.clone(),
                retry_in_ms: retry_at.saturating_duration_since(now).as_millis() as u64,
            },
            Link::Stopped => UpstreamStatus::Stopped,
        }
    }

    /// What the upstream announced at its handshake, when it is up.
    pub fn info(&self) -> Option<Arc<ServerPeerInfo>> {
        match &*self.link.lock().unwrap_or_else(|p| p.into_inner()) {
            Link::Up { info, .. } => info.clone(),
            _ => None,
        }
    }

    /// The client connection, or why there is none.
    pub fn peer(&self) -> Result<Peer<RoleClient>, Unavailable> {
        match &*self.link.lock().unwrap_or_else(|p| p.into_inner()) {
            Link::Up { peer, .. } => Ok(peer.clone()),
            Link::Starting => Err(Unavailable(format!(
                "the MCP server {} is starting; try again in a moment",
                self.name
            ))),
            Link::Down { reason, retry_at } => Err(Unavailable(format!(
                "the MCP server {} is not running ({reason}); Gatehouse restarts it in {} ms",
                self.name,
                retry_at
                    .saturating_duration_since(Instant::now())
                    .as_millis()
            ))),
            Link::Stopped => Err(Unavailable(format!(
                "the MCP server {} was stopped",
                self.name
            ))),
        }
    }

    /// Lists the upstream's tools now and records the listing (the store sees new and changed
    /// definitions). Returns the tools.
    pub async fn list_tools(&self) -> Result<Arc<Vec<Tool>>, Unavailable> {
        let peer = self.peer()?;
        let tools = peer.list_all_tools().await.map_err(|e| {
            Unavailable(format!(
                "the MCP server {} failed to list its tools: {e}",
                self.name
            ))
        })?;
        let tools = Arc::new(tools);
        self.record(&tools).await;
        *self.tools.lock().unwrap_or_else(|p| p.into_inner()) = tools.clone();
        Ok(tools)
    }

    /// Writes a listing to the store unless it is the one recorded last.
    async fn record(&self, tools: &[Tool]) {
        let values: Vec<serde_json::Value> = tools
            .iter()
            .filter_map(|t| serde_json::to_value(t).ok())
            .collect();
        let fingerprint: Vec<(String, String)> = values
            .iter()
            .map(|v| {
                (
                    v.get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    mcp::definition_hash(v),
                )
            })
            .collect();
        if self
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(&fingerprint)
        {
            return;
        }
        match mcp::record_tools(&self.store, &self.name, values).await {
            Ok(_) => {
                *self.recorded.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
            }
            Err(e) => {
                tracing::warn!(server = %self.name, error = %e, "could not record the tools of an MCP server")
            }
        }
    }

    fn set(&self, link: Link) {
        *self.link.lock().unwrap_or_else(|p| p.into_inner()) = link;
    }
}

/// The raw secret a connection holds, for an environment variable: a bearer connection's token
/// without its `Bearer ` prefix, an API key as is.
async fn connection_secret(vault: &Vault, connection: &str) -> Result<String, String> {
    let (_, credential) = vault
        .credential(connection)
        .await
        .map_err(|e| format!("the vault connection {connection} is unavailable: {e}"))?;
    let value = credential.value.expose();
    Ok(value.strip_prefix("Bearer ").unwrap_or(value).to_owned())
}

type Running = rmcp::service::RunningService<RoleClient, UpstreamClient>;

/// Connects to the upstream once: starts the child or opens the HTTP transport, and does the MCP
/// handshake.
async fn connect(u: &Arc<Upstream>, row: &McpServerRow, vault: &Vault) -> Result<Running, String> {
    let client = UpstreamClient {
        upstream: Arc::downgrade(u),
    };
    if row.transport == HTTP {
        let url = row.url.clone().ok_or("the server has no URL")?;
        let mut config = StreamableHttpClientTransportConfig::with_uri(url);
        if let Some(conn) = &row.connection {
            let (_, credential) = vault
                .credential(conn)
                .await
                .map_err(|e| format!("the vault connection {conn} is unavailable: {e}"))?;
            let value = credential.value.expose().to_owned();
            if credential.header_name.eq_ignore_ascii_case("authorization") {
                config.auth_header =
                    Some(value.strip_prefix("Bearer ").unwrap_or(&value).to_owned());
            } else {
                let name = axum::http::HeaderName::from_bytes(credential.header_name.as_bytes())
                    .map_err(|_| "the connection's header name is not valid".to_owned())?;
                let value = axum::http::HeaderValue::from_str(&value).map_err(|_| {
                    "the connection's secret is not a valid header value".to_owned()
                })?;
                config.custom_headers.insert(name, value);
            }
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        return tokio::time::timeout(CONNECT_TIMEOUT, client.serve(transport))
            .await
            .map_err(|_| "the MCP handshake timed out".to_owned())?
            .map_err(|e| format!("the MCP handshake failed: {e}"));
    }
    let (program, args) = row
        .command
        .split_first()
        .ok_or("the server has no command")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    // Gatehouse's own settings are not the server's business.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    let mut env = BTreeMap::new();
    for (k, v) in &row.env {
        let value = match v {
            EnvValue::Value(s) => s.clone(),
            EnvValue::Connection(c) => connection_secret(vault, c).await?,
        };
        env.insert(k.clone(), value);
    }
    cmd.envs(&env);
    drop(env);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if let Some(stderr) = stderr {
        // The server's own log goes to Gatehouse's debug log, never to an agent.
        let name = row.name.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %name, "{line}");
            }
        });
    }
    tokio::time::timeout(CONNECT_TIMEOUT, client.serve(transport))
        .await
        .map_err(|_| "the MCP handshake timed out".to_owned())?
        .map_err(|e| format!("the MCP handshake failed: {e}"))
}

/// Keeps the upstream connected until it is stopped: connect, list the tools, wait for the end,
/// record it, wait the backoff, again.
async fn supervise(u: Arc<Upstream>, row: McpServerRow, vault: Vault) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if u.cancel.is_cancelled() {
            break;
        }
        u.set(Link::Starting);
        let connected = tokio::select! {
            _ = u.cancel.cancelled() => break,
            c = connect(&u, &row, &vault) => c,
        };
        let reason = match connected {
            Ok(running) => {
                let since = Instant::now();
                u.set(Link::Up {
                    peer: running.peer().clone(),
                    info: running.peer_info(),
                    since,
                });
                tracing::info!(server = %u.name, "MCP server connected");
                if let Err(e) = u.list_tools().await {
                    tracing::warn!(server = %u.name, error = %e.0, "could not list tools");
                }
                let stop = running.cancellation_token();
                let cancel = u.cancel.clone();
                let watcher = tokio::spawn(async move {
                    cancel.cancelled().await;
                    stop.cancel();
                });
                let relister = tokio::spawn({
                    let u = u.clone();
                    async move {
                        loop {
                            tokio::time::sleep(RELIST_EVERY).await;
                            if let Err(e) = u.list_tools().await {
                                tracing::debug!(server = %u.name, error = %e.0, "could not list tools");
                            }
                        }
                    }
                });
                let quit = running.waiting().await;
                watcher.abort();
                relister.abort();
                if u.cancel.is_cancelled() {
                    break;
                }
                if since.elapsed() >= STABLE {
                    backoff = FIRST_BACKOFF;
                }
                match quit {
                    Ok(q) => format!("it stopped ({q:?})"),
                    Err(e) => format!("its connection failed: {e}"),
                }
            }
            Err(e) => e,
        };
        tracing::warn!(server = %u.name, %reason, retry_in_ms = backoff.as_millis() as u64, "MCP server down");
        u.set(Link::Down {
            reason: reason.clone(),
            retry_at: Instant::now() + backoff,
        });
        mcp::record_exit(&u.store, &u.name, None, Some(backoff.as_millis() as u64)).await;
        tokio::select! {
            _ = u.cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    u.set(Link::Stopped);
}
