//! The credential-injecting gateway: `ANY /gateway/{connection}/{*path}` and its RFC 9728
//! metadata at `/.well-known/oauth-protected-resource/gateway/{connection}`.
//!
//! Mounted by [`crate::router`] over the vault ([`VaultUpstreams`]); [`gateway_router`] serves it
//! over any [`Upstreams`] (an in-memory map in tests).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use gatehouse_core::gateway::{self, Presented, Refusal, Verdict};
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::vault::{Vault, VaultError};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::AppState;

/// Where a connection's calls go and the credential they carry.
#[derive(Clone)]
pub struct Upstream {
    pub base_url: String,
    pub header_name: String,
    pub header_value: String,
}

impl Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base_url", &self.base_url)
            .field("header_name", &self.header_name)
            .finish_non_exhaustive()
    }
}

/// Why a connection cannot be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    Unknown,
    /// The keyring is missing, locked or refuses access (503 `vault_sealed`).
    Sealed(String),
    /// The connection is expired or disconnected (503 `connection_unavailable`).
    NotActive(String),
    /// The keyring or the database answered but could not give the credential (503
    /// `credential_unavailable`), e.g. the keyring entry is gone.
    Unavailable(String),
}

pub type UpstreamFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Upstream, UpstreamError>> + Send + 'a>>;

/// The source of connections and their credentials (the vault).
pub trait Upstreams: Send + Sync + Debug {
    fn resolve<'a>(&'a self, connection: &'a str) -> UpstreamFuture<'a>;
}

/// The vault as the gateway's source of upstreams: each call reads the connection's row and its
/// secret from the OS keyring.
#[derive(Debug, Clone)]
pub struct VaultUpstreams(pub Vault);

impl Upstreams for VaultUpstreams {
    fn resolve<'a>(&'a self, connection: &'a str) -> UpstreamFuture<'a> {
        Box::pin(async move {
            match self.0.credential(connection).await {
                Ok((row, credential)) => Ok(Upstream {
                    base_url: row.base_url,
                    header_name: credential.header_name,
                    header_value: credential.value.expose().to_owned(),
                }),
                Err(VaultError::UnknownConnection(_)) => Err(UpstreamError::Unknown),
                Err(VaultError::NotActive { status, .. }) => Err(UpstreamError::NotActive(status)),
                Err(VaultError::Sealed(reason)) => Err(UpstreamError::Sealed(format!(
                    "{reason}; {}",
                    gatehouse_core::vault::UNSEAL_HINT
                ))),
                Err(VaultError::Keyring(reason)) => Err(UpstreamError::Unavailable(format!(
                    "the keyring could not give the credential of {connection}: {reason}"
                ))),
                Err(e) => {
                    tracing::warn!(error = %e, connection, "could not read a connection");
                    Err(UpstreamError::Unavailable(format!(
                        "the connection {connection} could not be read"
                    )))
                }
            }
        })
    }
}

#[derive(Debug, Clone)]
struct GatewayState {
    app: AppState,
    upstreams: Arc<dyn Upstreams>,
    client: Client<HttpConnector, Body>,
}

/// The gateway routes, behind the same Host/Origin guard as the rest of the server.
pub fn gateway_router(
    authority: Arc<gatehouse_core::Authority>,
    port: u16,
    upstreams: Arc<dyn Upstreams>,
) -> Router {
    let app = crate::app_state(authority, port);
    let state = GatewayState {
        app: app.clone(),
        upstreams,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/gateway/{name}",
            get(metadata),
        )
        .route("/gateway/{name}/{*path}", any(call))
        .route("/gateway/{name}/", any(call_root))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            app,
            crate::guard::guard,
        ))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /.well-known/oauth-protected-resource/gateway/{name}` (RFC 9728).
async fn metadata(State(s): State<GatewayState>, Path(name): Path<String>) -> Response {
    let iss = s.app.authority.issuer().to_owned();
    match s.upstreams.resolve(&name).await {
        Err(UpstreamError::Unknown) => not_found(&name),
        _ => json(
            StatusCode::OK,
            serde_json::json!({
                "resource": gateway::resource_uri(&iss, &name),
                "authorization_servers": [iss],
                "scopes_supported": [gateway::read_scope(&name), gateway::write_scope(&name)],
                "bearer_methods_supported": ["header"],
                "resource_name": format!("Gatehouse gateway to {name}"),
            }),
        ),
    }
}

fn not_found(name: &str) -> Response {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "error": "not_found", "error_description": format!("no connection named {name}") }),
    )
}

fn refusal(r: &Refusal, iss: &str, name: &str) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut body = serde_json::json!({ "error_description": r.description() });
    body["error"] = serde_json::json!(r.error().unwrap_or("invalid_request"));
    let mut res = json(status, body);
    let meta = gateway::metadata_uri(iss, name);
    let challenge = match r {
        Refusal::NoToken => Some(format!(r#"Bearer resource_metadata="{meta}""#)),
        Refusal::InvalidToken(_) => Some(format!(
            r#"Bearer resource_metadata="{meta}", error="invalid_token""#
        )),
        Refusal::InsufficientScope { scope } => Some(format!(
            r#"Bearer resource_metadata="{meta}", error="insufficient_scope", scope="{scope}""#
        )),
        Refusal::Denied(_) => None,
    };
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
}

async fn call_root(s: State<GatewayState>, Path(name): Path<String>, req: Request) -> Response {
    handle(s.0, name, String::new(), req).await
}

async fn call(
    s: State<GatewayState>,
    Path((name, path)): Path<(String, String)>,
    req: Request,
) -> Response {
    handle(s.0, name, path, req).await
}

struct Audit {
    client_id: Option<String>,
    decision: &'static str,
}

async fn handle(s: GatewayState, name: String, path: String, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let bytes_in = content_length(req.headers());
    let mut audit = Audit {
        client_id: None,
        decision: "deny",
    };
    let res = decide_and_forward(&s, &name, &path, req, &mut audit).await;
    let authority = s.app.authority.clone();
    let detail = serde_json::json!({
        "connection": name,
        "method": method,
        "path": format!("/{path}"),
        "status": res.status().as_u16(),
        "bytes_in": bytes_in,
        "bytes_out": content_length(res.headers()),
        "latency_ms": started.elapsed().as_millis() as u64,
        "decision": audit.decision,
    });
    gatehouse_core::gateway::record_call(&authority, audit.client_id.as_deref(), detail).await;
    res
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn decide_and_forward(
    s: &GatewayState,
    name: &str,
    path: &str,
    req: Request,
    audit: &mut Audit,
) -> Response {
    let authority = &s.app.authority;
    let iss = authority.issuer().to_owned();
    let method = req.method().as_str().to_owned();
    let token = match bearer(req.headers()) {
        None => return refusal(&Refusal::NoToken, &iss, name),
        Some(t) => authority.authenticate_resource_call(&t).await,
    };
    let token = match token {
        Ok(t) => t,
        Err(r) => return refusal(&r, &iss, name),
    };
    audit.client_id = Some(token.client_id.clone());
    let presented = Presented {
        audience: &token.audience,
        scopes: &token.scopes,
    };
    if let Err(r) = gateway::check_token(Some(presented), &iss, name, &method) {
        return refusal(&r, &iss, name);
    }
    let upstream = match s.upstreams.resolve(name).await {
        Ok(u) => u,
        Err(UpstreamError::Unknown) => return not_found(name),
        Err(UpstreamError::Sealed(reason)) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "vault_sealed", "error_description": format!("the vault is sealed: {reason}") }),
            );
        }
        Err(UpstreamError::NotActive(status)) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "connection_unavailable", "error_description": format!("the connection {name} is {status}: reconnect it in Gatehouse") }),
            );
        }
        Err(UpstreamError::Unavailable(reason)) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "credential_unavailable", "error_description": reason }),
            );
        }
    };
    let Some(url) = gateway::upstream_url(&upstream.base_url, path, req.uri().query()) else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "invalid_request", "error_description": "the path may not contain . or .. segments" }),
        );
    };
    let decision = match authority
        .policy_decide(
            &token.client_id,
            vec![gateway::API_REQUEST.into()],
            vec![url.clone()],
        )
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "policy unavailable");
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "temporarily_unavailable", "error_description": "the policy could not be read" }),
            );
        }
    };
    let verdict = gateway::apply_policy(&decision, &method);
    audit.decision = verdict.as_str();
    match verdict {
        Verdict::Refuse(r) => return refusal(&r, &iss, name),
        Verdict::Forward => {}
        Verdict::Ask { warnings } => {
            let asked =
                gateway::ask(authority, &token.client_id, &method, &url, None, warnings).await;
            let ttl = authority.broker().ttl() + Duration::from_millis(500);
            let status = match asked {
                Ok(id) => authority.broker().wait(&id, ttl).await,
                Err(e) => Err(e),
            };
            match status {
                Ok(ApprovalStatus::Approved) => audit.decision = "approved",
                Ok(st) => {
                    audit.decision = if st == ApprovalStatus::Denied {
                        "denied"
                    } else {
                        "expired"
                    };
                    let why = if st == ApprovalStatus::Denied {
                        "the person denied this call"
                    } else {
                        "nobody approved this call in time"
                    };
                    return refusal(&Refusal::Denied(why.into()), &iss, name);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not ask for approval");
                    return refusal(
                        &Refusal::Denied("the approval could not be filed".into()),
                        &iss,
                        name,
                    );
                }
            }
        }
    }
    forward(s, req, &url, &upstream).await
}

async fn forward(s: &GatewayState, req: Request, url: &str, upstream: &Upstream) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(uri) = url.parse::<Uri>() else {
        return json(
            StatusCode::BAD_GATEWAY,
            serde_json::json!({ "error": "bad_gateway", "error_description": "the upstream URL is not valid" }),
        );
    };
    let listed = gateway::connection_listed(
        parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let mut out = axum::http::Request::builder().method(parts.method).uri(uri);
    if let Some(h) = out.headers_mut() {
        for (k, v) in &parts.headers {
            if !gateway::drop_request_header(k.as_str(), &listed) {
                h.append(k.clone(), v.clone());
            }
        }
        match (
            HeaderName::from_bytes(upstream.header_name.as_bytes()),
            HeaderValue::from_str(&upstream.header_value),
        ) {
            (Ok(k), Ok(mut v)) => {
                v.set_sensitive(true);
                h.insert(k, v);
            }
            _ => {
                return json(
                    StatusCode::BAD_GATEWAY,
                    serde_json::json!({ "error": "bad_gateway", "error_description": "the stored credential cannot be sent as a header" }),
                );
            }
        }
    }
    let Ok(out) = out.body(body) else {
        return json(
            StatusCode::BAD_GATEWAY,
            serde_json::json!({ "error": "bad_gateway", "error_description": "the request could not be built" }),
        );
    };
    match s.client.request(out).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            let listed = gateway::connection_listed(
                parts
                    .headers
                    .get_all(header::CONNECTION)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            let names: Vec<HeaderName> = parts
                .headers
                .keys()
                .filter(|k| gateway::is_hop_by_hop(k.as_str(), &listed))
                .cloned()
                .collect();
            for k in names {
                parts.headers.remove(k);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::warn!(error = %e, "upstream unreachable");
            json(
                StatusCode::BAD_GATEWAY,
                serde_json::json!({ "error": "bad_gateway", "error_description": "the upstream API could not be reached" }),
            )
        }
    }
}
