//! The MCP gateway's HTTP side: each configured MCP server exposed at `/mcp/{name}` as MCP
//! Streamable HTTP (rmcp, stateless), an OAuth protected resource with RFC 9728 metadata; the
//! endpoints are created when first used and re-created when the server's row changes.
//!
//! Before a request reaches the protocol, this layer authenticates the bearer token (audience
//! `{issuer}/mcp/{name}`, a scope of the server), answers `401`/`403` with the challenges MCP
//! clients follow, and for `tools/call` checks the tool's scope so a client can step up. The
//! agent's token never goes upstream: the upstream is Gatehouse's own client connection.

mod proxy;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get};
use gatehouse_core::Authority;
use gatehouse_core::gateway::{Presented, Refusal};
use gatehouse_core::mcp;
use gatehouse_core::store::mcp::McpServerRow;
use gatehouse_core::vault::Vault;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::gateway::{bearer, json};
use proxy::Proxy;
pub use upstream::{Upstream, UpstreamStatus};

/// How often the running upstreams are brought in line with the configured servers.
pub const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest JSON-RPC message an agent may POST (tool arguments included).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Who is calling, as authenticated from the bearer token: handed to the protocol handler in the
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// One configured server: its row as last read, its supervised upstream and the rmcp service.
struct Endpoint {
    row: McpServerRow,
    upstream: Arc<Upstream>,
    service: StreamableHttpService<Proxy, NeverSessionManager>,
}

/// Every MCP endpoint of one server instance. Cheap to clone.
#[derive(Clone)]
pub struct McpGateway {
    inner: Arc<Inner>,
}

struct Inner {
    authority: Arc<Authority>,
    vault: Vault,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    /// Stops every upstream (children killed) when the instance stops.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for McpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpGateway").finish_non_exhaustive()
    }
}

impl McpGateway {
    pub fn new(authority: Arc<Authority>, vault: Vault) -> Self {
        Self {
            inner: Arc::new(Inner {
                authority,
                vault,
                endpoints: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Brings the running upstreams in line with the configured servers: starts new ones (so
    /// their tools are known, and can be pinned, before an agent first asks for consent),
    /// restarts changed ones and stops removed ones. Other processes (the CLI) change the
    /// configuration, so the instance calls this every [`SYNC_EVERY`].
    pub async fn sync(&self) {
        let rows = match mcp::list_servers(self.inner.authority.store()).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the MCP servers");
                return;
            }
        };
        if let Ok(mut endpoints) = self.inner.endpoints.lock() {
            endpoints.retain(|name, e| {
                let keep = rows.iter().any(|r| r.name == *name);
                if !keep {
                    e.upstream.stop();
                }
                keep
            });
        }
        for row in rows {
            self.endpoint_for(row);
        }
    }

    /// Runs [`McpGateway::sync`] now and every [`SYNC_EVERY`] until the gateway stops.
    pub async fn sync_loop(self) {
        loop {
            self.sync().await;
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = tokio::time::sleep(SYNC_EVERY) => {}
            }
        }
    }

    /// Stops every upstream: stdio servers are shut down.
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
        if let Ok(mut endpoints) = self.inner.endpoints.lock() {
            for (_, e) in endpoints.drain() {
                e.upstream.stop();
            }
        }
    }

    /// The status of each running upstream, by server name (the desktop's MCP servers view).
    pub fn statuses(&self) -> HashMap<String, UpstreamStatus> {
        self.inner
            .endpoints
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, e)| (k.clone(), e.upstream.status()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Lists a running server's tools now (the store then holds any new or changed definition);
    /// the desktop calls this when the person opens a server. `Ok(false)` when the server is not
    /// running here.
    pub async fn relist(&self, name: &str) -> Result<bool, String> {
        let upstream = self
            .inner
            .endpoints
            .lock()
            .ok()
            .and_then(|m| m.get(name).map(|e| e.upstream.clone()));
        match upstream {
            Some(u) => u.list_tools().await.map(|_| true).map_err(|e| e.0),
            None => Ok(false),
        }
    }

    /// The endpoint of a server as configured in `row`: the running one when the row is
    /// unchanged, else a new one (the old upstream is stopped).
    fn endpoint_for(&self, row: McpServerRow) -> Arc<Endpoint> {
        let mut endpoints = match self.inner.endpoints.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(e) = endpoints.get(&row.name) {
            if e.row == row {
                return e.clone();
            }
            e.upstream.stop();
        }
        let upstream = Upstream::start(
            row.clone(),
            self.inner.authority.store().clone(),
            self.inner.vault.clone(),
            self.inner.shutdown.child_token(),
        );
        let proxy = Proxy::new(self.inner.authority.clone(), upstream.clone());
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_max_request_body_bytes(MAX_MESSAGE)
            // Host and Origin are checked by the server's guard (exact host:port, same origin).
            .disable_allowed_hosts()
            .with_cancellation_token(self.inner.shutdown.child_token());
        let service = StreamableHttpService::new(
            move || Ok(proxy.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
        let endpoint = Arc::new(Endpoint {
            row: row.clone(),
            upstream,
            service,
        });
        endpoints.insert(row.name, endpoint.clone());
        endpoint
    }

    /// The endpoint of `name` if it is running here, without reading the store.
    fn running(&self, name: &str) -> Option<Arc<Endpoint>> {
        self.inner.endpoints.lock().ok()?.get(name).cloned()
    }

    /// The endpoint of `name` as configured now (another process may have added, changed or
    /// removed it); `None` when there is no such server.
    async fn lookup(&self, name: &str) -> Result<Option<Arc<Endpoint>>, Response> {
        let row = mcp::get_server(self.inner.authority.store(), name)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read an MCP server");
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "error": "temporarily_unavailable", "error_description": "the MCP server's settings could not be read" }),
                )
            })?;
        match row {
            Some(row) => Ok(Some(self.endpoint_for(row))),
            None => {
                if let Ok(mut m) = self.inner.endpoints.lock()
                    && let Some(e) = m.remove(name)
                {
                    e.upstream.stop();
                }
                Ok(None)
            }
        }
    }
}

#[derive(Clone)]
struct McpState {
    app: AppState,
    gateway: McpGateway,
}

/// The MCP routes, behind the same Host/Origin guard as the rest of the server.
pub(crate) fn mcp_router(gateway: McpGateway, app: AppState) -> Router {
    let state = McpState {
        app: app.clone(),
        gateway,
    };
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp/{name}",
            get(metadata),
        )
        .route("/mcp/{name}", any(endpoint))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            app,
            crate::guard::guard,
        ))
}

fn not_found(name: &str) -> Response {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "error": "not_found", "error_description": format!("no MCP server named {name}") }),
    )
}

/// `GET /.well-known/oauth-protected-resource/mcp/{name}` (RFC 9728): the resource, its
/// authorization server and the scopes it knows: the whole server and each tool seen.
async fn metadata(State(s): State<McpState>, Path(name): Path<String>) -> Response {
    let authority = &s.app.authority;
    let iss = authority.issuer().to_owned();
    match s.gateway.lookup(&name).await {
        Err(res) => res,
        Ok(None) => not_found(&name),
        Ok(Some(_)) => {
            let tools = mcp::list_tools(authority.store(), &name)
                .await
                .unwrap_or_default();
            let scopes: Vec<String> = std::iter::once(mcp::server_scope(&name))
                .chain(
                    tools
                        .iter()
                        .filter(|t| t.present)
                        .map(|t| mcp::tool_scope(&name, &t.name)),
                )
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "resource": mcp::resource_uri(&iss, &name),
                    "authorization_servers": [iss],
                    "scopes_supported": scopes,
                    "bearer_methods_supported": ["header"],
                    "resource_name": format!("{name} (MCP server behind Gatehouse)"),
                }),
            )
        }
    }
}

/// The answer to a refused token, with the challenge MCP clients follow: where the metadata is
/// and which scope to ask for.
fn refusal(r: &Refusal, iss: &str, name: &str) -> Response {
    crate::gateway::challenge(
        r,
        &mcp::metadata_uri(iss, name),
        Some(&mcp::server_scope(name)),
    )
}

/// The tools a JSON-RPC message (or batch) calls, for the scope check before dispatch.
fn called_tools(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let messages = match v {
        serde_json::Value::Array(a) => a,
        m => vec![m],
    };
    messages
        .iter()
        .filter(|m| m.get("method").and_then(|x| x.as_str()) == Some("tools/call"))
        .filter_map(|m| m.pointer("/params/name").and_then(|n| n.as_str()))
        .map(str::to_owned)
        .collect()
}

/// `/mcp/{name}`: authenticate, check the scope, hand the message to the server's rmcp service.
async fn endpoint(State(s): State<McpState>, Path(name): Path<String>, req: Request) -> Response {
    let authority = &s.app.authority;
    let iss = authority.issuer().to_owned();
    let Some(token) = bearer(req.headers()) else {
        // Unknown servers answer 404 only to an authenticated caller: the 401 comes first so a
        // client always learns where to get a token. A known server's upstream starts now if it
        // is not running yet, so its tools are listed before the consent that pins them.
        let _ = s.gateway.lookup(&name).await;
        return refusal(&Refusal::NoToken, &iss, &name);
    };
    let token = match authority.authenticate_resource_call(&token).await {
        Ok(t) => t,
        Err(r) => return refusal(&r, &iss, &name),
    };
    let presented = Presented {
        audience: &token.audience,
        scopes: &token.scopes,
    };
    if let Err(r) = mcp::check_token(Some(presented), &iss, &name) {
        return refusal(&r, &iss, &name);
    }
    // A running endpoint serves at once (the sync loop follows configuration changes within
    // SYNC_EVERY, and each call re-reads its server's row with the policy); only a server not
    // running here costs a read.
    let endpoint = match s.gateway.running(&name) {
        Some(e) => e,
        None => match s.gateway.lookup(&name).await {
            Ok(Some(e)) => e,
            Ok(None) => return not_found(&name),
            Err(res) => return res,
        },
    };
    let (mut parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_MESSAGE).await {
        Ok(b) => b,
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({ "error": "invalid_request", "error_description": format!("an MCP message may be at most {MAX_MESSAGE} bytes") }),
            );
        }
    };
    // Step-up (MCP authorization, scope challenge): a tool the token does not cover is refused
    // before the protocol sees it, naming the scope that would allow it.
    if let Some(tool) = called_tools(&body)
        .into_iter()
        .find(|t| !mcp::tool_allowed(&token.scopes, &name, t))
    {
        return refusal(
            &Refusal::InsufficientScope {
                scope: mcp::tool_scope(&name, &tool),
            },
            &iss,
            &name,
        );
    }
    parts.extensions.insert(Caller {
        client_id: token.client_id.clone(),
        scopes: token.scopes.clone(),
    });
    let req = Request::from_parts(parts, Body::from(body));
    let res = endpoint.service.handle(req).await;
    let (parts, body) = res.into_parts();
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_called_in_messages_and_batches() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        assert_eq!(called_tools(one), vec!["echo".to_owned()]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm"}}]"#;
        assert_eq!(called_tools(batch), vec!["rm".to_owned()]);
        assert!(called_tools(b"not json").is_empty());
        assert!(called_tools(br#"{"method":"tools/list"}"#).is_empty());
    }
}
