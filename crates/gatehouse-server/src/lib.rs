//! Gatehouse's loopback HTTP server: the OAuth 2.1 authorization server endpoints over the core's
//! [`Authority`], behind the local-server hardening guard (Host and Origin checks, no CORS, no
//! framing, state changes on POST).

mod backchannel;
pub mod connect;
pub mod gateway;
mod guard;
pub mod instance;
pub mod mcp;
mod oauth;
mod pages;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use gatehouse_core::Authority;
use gateway::Upstreams;
pub use instance::{Instance, InstanceOptions, ServerError, StartError};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub authority: Arc<Authority>,
    pub allowed_hosts: Arc<[String]>,
    pub allowed_origins: Arc<[String]>,
}

/// The issuer identifier for a bound loopback address: `http://127.0.0.1:PORT` or `http://[::1]:PORT`.
pub fn issuer_for(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("http://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
    }
}

pub(crate) fn app_state(authority: Arc<Authority>, port: u16) -> AppState {
    let hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|h| format!("{h}:{port}"))
        .collect();
    let origins: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
    AppState {
        authority,
        allowed_hosts: hosts.into(),
        allowed_origins: origins.into(),
    }
}

/// The router, without a socket (tests drive it with `tower::ServiceExt::oneshot`): the OAuth
/// endpoints and the gateway over `upstreams` (the vault: [`gateway::VaultUpstreams`]).
pub fn router(
    authority: Arc<Authority>,
    port: u16,
    upstreams: Arc<dyn Upstreams>,
    mcp: mcp::McpGateway,
) -> Router {
    let gateway = gateway::gateway_router(authority.clone(), port, upstreams);
    let state = app_state(authority, port);
    let mcp = mcp::mcp_router(mcp, state.clone());
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/openid-configuration", get(oauth::metadata))
        .route("/register", post(oauth::register))
        .route(
            "/authorize",
            get(oauth::authorize_get).post(oauth::authorize_post),
        )
        .route("/consent/{id}", get(oauth::consent_progress))
        .route("/token", post(oauth::token))
        .route("/bc-authorize", post(backchannel::bc_authorize))
        .route(
            "/device_authorization",
            post(backchannel::device_authorization),
        )
        .route("/device", get(backchannel::device_page))
        .route("/revoke", post(oauth::revoke))
        .route("/introspect", post(oauth::introspect))
        .fallback(oauth::not_found)
        .method_not_allowed_fallback(oauth::method_not_allowed)
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
        .merge(gateway)
        .merge(mcp)
        .merge(connect::router(
            gatehouse_core::vault::oauth::ConnectFlows::shared(),
            port,
        ))
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    authority: Arc<Authority>,
    upstreams: Arc<dyn Upstreams>,
    mcp: mcp::McpGateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "Gatehouse only listens on loopback addresses",
        ));
    }
    let app = router(authority, addr.port(), upstreams, mcp);
    // Without TCP_NODELAY a response written in two parts (headers, then a body that was not
    // ready yet, as the gateway's) waits for the client's delayed ACK: about 40 ms on Linux.
    let listener = axum::serve::ListenerExt::tap_io(listener, |s: &mut tokio::net::TcpStream| {
        let _ = s.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
