//! The loopback redirect of upstream OAuth connections: `GET /connect/callback?code=..&state=..`
//! completes a flow started with [`ConnectFlows::start`] in this process and answers a small
//! HTML page. An unknown, reused or expired `state` gets an error page and changes nothing.
//!
//! The main server mounts [`router`] over [`ConnectFlows::shared`] (the desktop app starts its
//! flows there, with the redirect URI `http://127.0.0.1:PORT/connect/callback`);
//! `gatehouse connections add --oauth` serves it alone on its own port with [`serve_callback`].

use std::future::Future;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use gatehouse_core::vault::oauth::{CALLBACK_PATH, CallbackParams, ConnectError, ConnectFlows};

use crate::pages::escape;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[derive(Debug, Clone)]
struct ConnectState {
    flows: ConnectFlows,
    hosts: std::sync::Arc<[String]>,
}

/// `GET /connect/callback` over `flows`, for a server listening on `127.0.0.1:port`.
pub fn router(flows: ConnectFlows, port: u16) -> Router {
    let hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|h| format!("{h}:{port}"))
        .collect();
    Router::new()
        .route(CALLBACK_PATH, get(callback))
        .with_state(ConnectState {
            flows,
            hosts: hosts.into(),
        })
}

/// Serves only the callback on `listener` (a loopback address) until `shutdown` completes.
pub async fn serve_callback(
    listener: tokio::net::TcpListener,
    flows: ConnectFlows,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the OAuth callback only listens on loopback addresses",
        ));
    }
    axum::serve(listener, router(flows, addr.port()))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn callback(
    State(s): State<ConnectState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    // The browser arrives by a top-level redirect from the provider: a Host that is not this
    // loopback address is a DNS-rebinding attempt. (No Origin check: a cross-site navigation
    // may carry the provider's.)
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if !host.is_some_and(|h| s.hosts.contains(&h)) {
        return page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This Host is not Gatehouse's loopback address.",
        );
    }
    match s.flows.complete(&params).await {
        Ok(row) => page(
            StatusCode::OK,
            "Connected",
            &format!(
                "Gatehouse connected {} ({}). Its tokens are in the OS keyring; agents reach it \
                 through /gateway/{}/ without ever seeing them. You can close this tab.",
                row.name, row.provider, row.name
            ),
        ),
        Err(e) => {
            let status = match e {
                ConnectError::UnknownState | ConnectError::Expired | ConnectError::MissingCode => {
                    StatusCode::BAD_REQUEST
                }
                ConnectError::Denied(_) => StatusCode::FORBIDDEN,
                ConnectError::Provider(_) => StatusCode::BAD_GATEWAY,
                ConnectError::Vault(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::info!(error = %e, "an OAuth connection flow did not complete");
            page(status, "Not connected", &format!("{e}."))
        }
    }
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title} · Gatehouse</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1d2433;background:#f7f8fa}}
h1{{font-size:1.3rem}}main{{background:#fff;border:1px solid #dde1e8;border-radius:10px;padding:1.5rem 1.75rem}}</style></head>
<body><main><h1>{title}</h1><p>{message}</p></main></body></html>"#,
        title = escape(title),
        message = escape(message),
    );
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}
