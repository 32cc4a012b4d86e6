//! The credential-injecting gateway: `ANY /gateway/{connection}/{*path}` and its RFC 9728
//! metadata at `/.well-known/oauth-protected-resource/gateway/{connection}`.
//!
//! Mounted by [`crate::router`] over the vault ([`VaultUpstreams`]); [`gateway_router`] serves it
//! over any [`Upstreams`] (an in-memory map in tests).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use gatehouse_core::gateway::summary::{self, BodySample};
use gatehouse_core::gateway::{self, Presented, Refusal, Verdict};
use gatehouse_core::secret::Secret;
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::vault::{Vault, VaultError, oauth};
use hyper::body::{Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::AppState;

/// Where a connection's calls go and the credential they carry.
#[derive(Clone)]
pub struct Upstream {
    pub base_url: String,
    pub header_name: String,
    /// The header's whole value; shared with the credential cache, zeroized when the last
    /// holder drops it.
    pub header_value: Arc<Secret>,
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

    /// Like [`Upstreams::resolve`], for a connection whose row the caller has just read (the
    /// vault then skips its own read of the row).
    fn resolve_row<'a>(&'a self, row: &'a ConnectionRow) -> UpstreamFuture<'a> {
        self.resolve(&row.name)
    }
}

/// What identifies a version of a connection's row: a removal, a re-add (new row id or creation
/// time, even when SQLite reuses the id), a status change (disconnected, expired), a new expiry
/// (a refresh) or another keyring entry or header all change it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RowVersion {
    id: i64,
    created_at: i64,
    kind: String,
    status: String,
    expires_at: Option<i64>,
    keyring_ref: String,
    header_name: Option<String>,
    base_url: String,
}

impl RowVersion {
    fn of(row: &ConnectionRow) -> Self {
        Self {
            id: row.id,
            created_at: row.created_at,
            kind: row.kind.clone(),
            status: row.status.clone(),
            expires_at: row.expires_at,
            keyring_ref: row.keyring_ref.clone(),
            header_name: row.header_name.clone(),
            base_url: row.base_url.clone(),
        }
    }

    /// Whether a credential read for this version may be served from memory at `now`: not
    /// once the vault would refresh it, so its refresh-before-expiry always sees a call.
    fn cacheable(&self, now: i64) -> bool {
        self.status == "active"
            && !oauth::needs_refresh(self.expires_at, now, oauth::REFRESH_MARGIN)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long a credential read from the keyring is used before the keyring is asked again, so
/// that a keyring locked or an entry deleted outside Gatehouse (which no row records) is noticed.
pub const KEYRING_RECHECK: Duration = Duration::from_secs(30);

/// A credential held in memory, with the row version it was read for.
#[derive(Debug)]
struct Cached {
    version: RowVersion,
    upstream: Upstream,
    read_at: Instant,
}

/// The vault as the gateway's source of upstreams. The keyring (a D-Bus round trip to the
/// Secret Service on Linux) is read once per version of a connection: each call re-reads the
/// connection's row from SQLite, which is cheap, and uses the credential held in memory only
/// while the row is unchanged; so a removal, a disconnect, an expiry or a re-add, by this
/// process or by the CLI in another one, takes effect on the very next call. Changes the rows
/// cannot show (the keyring locked, an entry deleted by hand) take effect within
/// [`KEYRING_RECHECK`].
#[derive(Debug)]
pub struct VaultUpstreams {
    vault: Vault,
    keyring_recheck: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl VaultUpstreams {
    pub fn new(vault: Vault) -> Self {
        Self::with_keyring_recheck(vault, KEYRING_RECHECK)
    }

    /// Asks the keyring again after `recheck` (zero: on every call, no cache).
    pub fn with_keyring_recheck(vault: Vault, recheck: Duration) -> Self {
        Self {
            vault,
            keyring_recheck: recheck,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str, version: &RowVersion) -> Option<Upstream> {
        let mut cache = self.cache.lock().ok()?;
        match cache.get(name) {
            Some(c)
                if c.version == *version
                    && version.cacheable(now_ms())
                    && c.read_at.elapsed() < self.keyring_recheck =>
            {
                Some(c.upstream.clone())
            }
            Some(_) => {
                cache.remove(name);
                None
            }
            None => None,
        }
    }

    fn forget(&self, name: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(name);
        }
    }

    async fn read_vault(&self, connection: &str) -> Result<Upstream, UpstreamError> {
        match self.vault.credential(connection).await {
            Ok((row, credential)) => {
                let upstream = Upstream {
                    base_url: row.base_url.clone(),
                    header_name: credential.header_name,
                    header_value: Arc::new(credential.value),
                };
                let version = RowVersion::of(&row);
                if version.cacheable(now_ms())
                    && !self.keyring_recheck.is_zero()
                    && let Ok(mut cache) = self.cache.lock()
                {
                    let cached = Cached {
                        version,
                        upstream: upstream.clone(),
                        read_at: Instant::now(),
                    };
                    cache.insert(connection.to_owned(), cached);
                }
                Ok(upstream)
            }
            Err(e) => {
                self.forget(connection);
                Err(upstream_error(connection, e))
            }
        }
    }
}

fn upstream_error(connection: &str, e: VaultError) -> UpstreamError {
    match e {
        VaultError::UnknownConnection(_) => UpstreamError::Unknown,
        VaultError::NotActive { status, .. } => UpstreamError::NotActive(status),
        VaultError::Sealed(reason) => {
            UpstreamError::Sealed(format!("{reason}; {}", gatehouse_core::vault::UNSEAL_HINT))
        }
        VaultError::Keyring(reason) => UpstreamError::Unavailable(format!(
            "the keyring could not give the credential of {connection}: {reason}"
        )),
        e => {
            tracing::warn!(error = %e, connection, "could not read a connection");
            UpstreamError::Unavailable(format!("the connection {connection} could not be read"))
        }
    }
}

impl Upstreams for VaultUpstreams {
    fn resolve<'a>(&'a self, connection: &'a str) -> UpstreamFuture<'a> {
        Box::pin(async move {
            let row = match self.vault.get(connection).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    self.forget(connection);
                    return Err(UpstreamError::Unknown);
                }
                Err(e) => {
                    self.forget(connection);
                    return Err(upstream_error(connection, e));
                }
            };
            self.resolve_row(&row).await
        })
    }

    fn resolve_row<'a>(&'a self, row: &'a ConnectionRow) -> UpstreamFuture<'a> {
        Box::pin(async move {
            match self.cached(&row.name, &RowVersion::of(row)) {
                Some(u) => Ok(u),
                None => self.read_vault(&row.name).await,
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
        client: Client::builder(TokioExecutor::new()).build(upstream_connector()),
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

/// Plain HTTP to the upstreams, with TCP_NODELAY: a request body streamed in pieces must not
/// wait for the upstream's delayed ACKs.
fn upstream_connector() -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c
}

pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Response {
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

fn temporarily_unavailable() -> Response {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "error": "temporarily_unavailable", "error_description": "the policy could not be read" }),
    )
}

fn upstream_refusal(name: &str, e: UpstreamError) -> Response {
    match e {
        UpstreamError::Unknown => not_found(name),
        UpstreamError::Sealed(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": "vault_sealed", "error_description": format!("the vault is sealed: {reason}") }),
        ),
        UpstreamError::NotActive(status) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": "connection_unavailable", "error_description": format!("the connection {name} is {status}: reconnect it in Gatehouse") }),
        ),
        UpstreamError::Unavailable(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "error": "credential_unavailable", "error_description": reason }),
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
    challenge(r, &gateway::metadata_uri(iss, name), None)
}

/// The answer to a refused token on a protected resource, with the challenge clients follow
/// (RFC 6750 §3, RFC 9728 §5.1): where the resource's metadata is and, when given, which scope
/// to ask for (`insufficient_scope` always names the one it needs).
pub(crate) fn challenge(r: &Refusal, metadata: &str, scope: Option<&str>) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut body = serde_json::json!({ "error_description": r.description() });
    body["error"] = serde_json::json!(r.error().unwrap_or("invalid_request"));
    let mut res = json(status, body);
    let hint = scope
        .map(|s| format!(r#", scope="{s}""#))
        .unwrap_or_default();
    let value = match r {
        Refusal::NoToken => Some(format!(r#"Bearer resource_metadata="{metadata}"{hint}"#)),
        Refusal::InvalidToken(_) => Some(format!(
            r#"Bearer resource_metadata="{metadata}"{hint}, error="invalid_token""#
        )),
        Refusal::InsufficientScope { scope } => Some(format!(
            r#"Bearer resource_metadata="{metadata}", error="insufficient_scope", scope="{scope}""#
        )),
        Refusal::Denied(_) => None,
    };
    if let Some(v) = value.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
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

/// What the gateway learned about a call while deciding it, for its audit event.
struct Audit {
    client_id: Option<String>,
    decision: &'static str,
    /// Set once the request went upstream: the bytes of its body pulled so far.
    sent: Option<Arc<AtomicU64>>,
}

async fn handle(s: GatewayState, name: String, path: String, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let mut audit = Audit {
        client_id: None,
        decision: "deny",
        sent: None,
    };
    let res = decide_and_forward(&s, &name, &path, req, &mut audit).await;
    let (parts, body) = res.into_parts();
    let status = parts.status.as_u16();
    // Bodies the agent will never get, whatever Content-Length says.
    let expected = if method == "HEAD" || matches!(status, 204 | 304) {
        Some(0)
    } else {
        content_length(&parts.headers)
    };
    let record = CallRecord {
        authority: s.app.authority.clone(),
        client_id: audit.client_id,
        detail: serde_json::json!({
            "connection": name,
            "method": method,
            "path": format!("/{path}"),
            "status": status,
            "latency_ms": started.elapsed().as_millis() as u64,
            "decision": audit.decision,
        }),
        started,
        sent: audit.sent,
    };
    Response::from_parts(parts, Body::new(Audited::new(body, expected, record)))
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
    let Some(bearer) = bearer(req.headers()) else {
        return refusal(&Refusal::NoToken, &iss, name);
    };
    // The token first, the connection after: a caller without a valid token never makes the
    // gateway look up (or read the keyring for) a connection. Running both reads side by side
    // measured no faster under load at c=16.
    let token = authority.authenticate_resource_call(&bearer).await;
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
    // The connection's row and the policy in one read; the row then says whether the cached
    // credential is still good.
    let query = req.uri().query();
    let lookup = match gateway::lookup_call(authority, &token.client_id, name, path, query).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the connection and the policy");
            return temporarily_unavailable();
        }
    };
    let (resolved, early) = match &lookup {
        Some(l) => (s.upstreams.resolve_row(&l.row).await, l.decision.as_ref()),
        None => (s.upstreams.resolve(name).await, None),
    };
    let upstream = match resolved {
        Ok(u) => u,
        Err(e) => return upstream_refusal(name, e),
    };
    let Some(url) = gateway::upstream_url(&upstream.base_url, path, query) else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "invalid_request", "error_description": "the path may not contain . or .. segments" }),
        );
    };
    let decision = match early {
        // Decided for this very URL (the credential's row may be newer than the one read).
        Some((decided_for, d)) if *decided_for == url => d.clone(),
        _ => match authority
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
                return temporarily_unavailable();
            }
        },
    };
    let verdict = gateway::apply_policy(&decision, &method);
    audit.decision = verdict.as_str();
    let (parts, body) = req.into_parts();
    let body = match verdict {
        Verdict::Refuse(r) => return refusal(&r, &iss, name),
        Verdict::Forward => Forwarded::new(Bytes::new(), Some(body)),
        Verdict::Ask { warnings } => {
            // The person sees the start of the body; it is kept and sent first once approved.
            let (prefix, rest) = match read_prefix(body, summary::PREVIEW_BYTES).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "the agent's request body failed");
                    return json(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({ "error": "invalid_request", "error_description": "the request body could not be read" }),
                    );
                }
            };
            let described = summary::summarize(&BodySample {
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                declared_len: content_length(&parts.headers),
                prefix: &prefix,
                complete: rest.is_none(),
            });
            let asked = gateway::ask(
                authority,
                &token.client_id,
                &method,
                &url,
                Some(described),
                warnings,
            )
            .await;
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
            Forwarded::new(prefix, rest)
        }
    };
    audit.sent = Some(body.sent.clone());
    forward(s, parts, body, &url, &upstream).await
}

/// Reads the start of a request body: at least `limit` bytes unless the body ends first (then
/// the rest is `None`). Frames are kept whole, so the prefix exceeds `limit` by at most one frame.
/// A body that stalls is summarized by what arrived within [`PREFIX_WAIT`].
async fn read_prefix(mut body: Body, limit: usize) -> Result<(Bytes, Option<Body>), axum::Error> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + PREFIX_WAIT;
    while buf.len() < limit {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(deadline, next).await {
            Err(_) => break,
            Ok(None) => return Ok((Bytes::from(buf), None)),
            Ok(Some(Err(e))) => return Err(e),
            // Request trailers are not forwarded (hop-by-hop `TE`/`Trailer` are dropped anyway).
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    if body.is_end_stream() {
        return Ok((Bytes::from(buf), None));
    }
    Ok((Bytes::from(buf), Some(body)))
}

/// How long the gateway waits for the start of a body it must summarize before asking.
const PREFIX_WAIT: Duration = Duration::from_secs(10);

/// The request body sent upstream: the prefix read for the summary, then the rest of the
/// agent's stream, never buffered; counts the bytes the upstream connection pulls.
struct Forwarded {
    prefix: Bytes,
    rest: Option<Body>,
    sent: Arc<AtomicU64>,
}

impl Forwarded {
    fn new(prefix: Bytes, rest: Option<Body>) -> Self {
        Self {
            prefix,
            rest,
            sent: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl HttpBody for Forwarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let data = std::mem::take(&mut this.prefix);
            this.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(rest).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(d) = f.data_ref()
        {
            this.sent.fetch_add(d.len() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint);
        let extra = self.prefix.len() as u64;
        let mut hint = SizeHint::new();
        // The upper bound first: set_lower panics above the current upper bound.
        if let Some(u) = rest.upper() {
            hint.set_upper(u + extra);
        }
        hint.set_lower(rest.lower() + extra);
        hint
    }
}

/// How a response body ended, as audited.
#[derive(Debug, Clone, Copy)]
enum Transfer {
    Complete,
    /// The upstream's body failed midway.
    Error,
    /// The agent went away (or the server stopped) before the body ended.
    Aborted,
}

impl Transfer {
    fn as_str(self) -> &'static str {
        match self {
            Transfer::Complete => "complete",
            Transfer::Error => "error",
            Transfer::Aborted => "aborted",
        }
    }
}

/// The `gateway.call` event of one call, written once its response body has ended.
struct CallRecord {
    authority: Arc<gatehouse_core::Authority>,
    client_id: Option<String>,
    detail: serde_json::Value,
    started: Instant,
    sent: Option<Arc<AtomicU64>>,
}

impl CallRecord {
    fn write(self, bytes_out: u64, transfer: Transfer) -> WriteFuture {
        let CallRecord {
            authority,
            client_id,
            mut detail,
            started,
            sent,
        } = self;
        detail["bytes_in"] = serde_json::json!(sent.map(|s| s.load(Ordering::Relaxed)));
        detail["bytes_out"] = serde_json::json!(bytes_out);
        detail["duration_ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
        detail["transfer"] = serde_json::json!(transfer.as_str());
        Box::pin(async move {
            gateway::record_call(&authority, client_id.as_deref(), detail).await;
        })
    }
}

type WriteFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The response body to the agent: passes the frames through, counts their bytes, and writes the
/// call's audit event when the body ends (before its last frame goes out, so the agent never
/// sees a finished call that is not yet audited), fails, or is dropped unfinished.
struct Audited {
    inner: Body,
    counted: u64,
    /// The body's length when known (Content-Length; 0 for HEAD, 204 and 304).
    expected: Option<u64>,
    record: Option<CallRecord>,
    writing: Option<WriteFuture>,
    /// What to hand out once the audit write is done.
    after: Option<Option<Result<Frame<Bytes>, axum::Error>>>,
}

impl Audited {
    fn new(inner: Body, expected: Option<u64>, record: CallRecord) -> Self {
        Self {
            inner,
            counted: 0,
            expected,
            record: Some(record),
            writing: None,
            after: None,
        }
    }

    fn finish(&mut self, transfer: Transfer) {
        if let Some(r) = self.record.take() {
            self.writing = Some(r.write(self.counted, transfer));
        }
    }
}

impl HttpBody for Audited {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(w) = this.writing.as_mut() {
                ready!(w.as_mut().poll(cx));
                this.writing = None;
                return Poll::Ready(this.after.take().flatten());
            }
            if this.record.is_none() {
                return Poll::Ready(this.after.take().flatten());
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Some(d) = frame.data_ref() {
                        this.counted += d.len() as u64;
                    }
                    // hyper stops polling once a known length is written, so the last frame
                    // is held until the event is written.
                    let last = this.inner.is_end_stream() || this.expected == Some(this.counted);
                    if !last {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    this.after = Some(Some(Ok(frame)));
                    this.finish(Transfer::Complete);
                }
                Some(Err(e)) => {
                    this.after = Some(Some(Err(e)));
                    this.finish(Transfer::Error);
                }
                None => {
                    this.after = Some(None);
                    this.finish(Transfer::Complete);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.record.is_none() && self.writing.is_none() && self.after.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(r) = self.record.take() {
            let transfer = if self.inner.is_end_stream() || self.expected == Some(self.counted) {
                Transfer::Complete
            } else {
                Transfer::Aborted
            };
            rt.spawn(r.write(self.counted, transfer));
        } else if let Some(w) = self.writing.take() {
            rt.spawn(w);
        }
    }
}

async fn forward(
    s: &GatewayState,
    parts: axum::http::request::Parts,
    body: Forwarded,
    url: &str,
    upstream: &Upstream,
) -> Response {
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
            HeaderValue::from_str(upstream.header_value.expose()),
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
    let Ok(out) = out.body(Body::new(body)) else {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use gatehouse_core::store::StoreError;
    use gatehouse_core::vault::{CredentialError, CredentialStore, MemoryStore};
    use gatehouse_core::{Store, StoreOptions, SystemClock};

    use super::*;

    /// The in-memory keyring, counting reads (each one a D-Bus round trip with the real one).
    #[derive(Debug, Default)]
    struct CountingKeyring {
        inner: MemoryStore,
        gets: AtomicUsize,
    }

    impl CredentialStore for CountingKeyring {
        fn put(&self, user: &str, secret: &Secret) -> Result<(), CredentialError> {
            self.inner.put(user, secret)
        }
        fn get(&self, user: &str) -> Result<Option<Secret>, CredentialError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(user)
        }
        fn delete(&self, user: &str) -> Result<bool, CredentialError> {
            self.inner.delete(user)
        }
        fn probe(&self) -> Result<(), CredentialError> {
            self.inner.probe()
        }
    }

    fn open(dir: &std::path::Path) -> Store {
        Store::open(dir, StoreOptions::default(), Arc::new(SystemClock)).expect("store")
    }

    async fn sql(store: &Store, statement: String) {
        store
            .write(move |tx| {
                tx.conn()
                    .execute(&statement, [])
                    .map(|_| ())
                    .map_err(StoreError::from)
            })
            .await
            .expect("update");
    }

    async fn value(u: &VaultUpstreams, name: &str) -> Result<String, UpstreamError> {
        u.resolve(name)
            .await
            .map(|up| up.header_value.expose().to_owned())
    }

    #[tokio::test]
    async fn the_credential_cache_follows_the_connection_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keyring = Arc::new(CountingKeyring::default());
        let gets = || keyring.gets.load(Ordering::SeqCst);
        let upstreams = VaultUpstreams::new(Vault::new(open(dir.path()), keyring.clone()));
        // Another process (the CLI) with its own connection to the same database.
        let cli_store = open(dir.path());
        let cli = Vault::new(cli_store.clone(), keyring.clone());
        let add = |secret: &'static str| {
            let cli = cli.clone();
            async move {
                cli.add_api_key(
                    "api",
                    "http://127.0.0.1:9/v1",
                    "X-API-Key",
                    "",
                    Secret::from_presented(secret),
                )
                .await
                .expect("add")
            }
        };

        assert_eq!(value(&upstreams, "api").await, Err(UpstreamError::Unknown));
        add("key-one").await;
        assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-one"));
        assert_eq!(gets(), 1);
        for _ in 0..5 {
            assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-one"));
        }
        assert_eq!(gets(), 1, "an unchanged connection reads the keyring once");

        // Removed and re-added with another secret: the next call has the new one.
        cli.remove("api", "test").await.expect("remove");
        assert_eq!(value(&upstreams, "api").await, Err(UpstreamError::Unknown));
        add("key-two").await;
        assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-two"));
        assert_eq!(gets(), 2);

        // Disconnected or expired: refused on the next call; active again: read afresh.
        for status in ["disconnected", "expired"] {
            sql(
                &cli_store,
                format!("UPDATE connections SET status = '{status}' WHERE name = 'api'"),
            )
            .await;
            assert_eq!(
                value(&upstreams, "api").await,
                Err(UpstreamError::NotActive(status.into()))
            );
            sql(
                &cli_store,
                "UPDATE connections SET status = 'active' WHERE name = 'api'".into(),
            )
            .await;
            let before = gets();
            assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-two"));
            assert_eq!(gets(), before + 1);
        }

        // A credential close to its expiry is never served from memory (the vault refreshes
        // it); a new expiry (a refresh) is a new version.
        let soon = now_ms() + 60_000;
        sql(
            &cli_store,
            format!("UPDATE connections SET expires_at = {soon} WHERE name = 'api'"),
        )
        .await;
        let before = gets();
        for _ in 0..3 {
            assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-two"));
        }
        assert_eq!(gets(), before + 3);
        let later = now_ms() + 3_600_000;
        sql(
            &cli_store,
            format!("UPDATE connections SET expires_at = {later} WHERE name = 'api'"),
        )
        .await;
        let before = gets();
        for _ in 0..3 {
            assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-two"));
        }
        assert_eq!(gets(), before + 1);

        // The keyring locked: served from memory until the recheck, which finds it sealed.
        keyring.inner.set_sealed(true);
        assert_eq!(value(&upstreams, "api").await.as_deref(), Ok("key-two"));
        let strict = VaultUpstreams::with_keyring_recheck(
            Vault::new(open(dir.path()), keyring.clone()),
            Duration::ZERO,
        );
        assert!(matches!(
            value(&strict, "api").await,
            Err(UpstreamError::Sealed(_))
        ));
        keyring.inner.set_sealed(false);
        let before = gets();
        for _ in 0..3 {
            assert_eq!(value(&strict, "api").await.as_deref(), Ok("key-two"));
        }
        assert_eq!(gets(), before + 3, "a zero recheck never caches");
    }

    #[test]
    fn the_upstream_debug_hides_the_credential() {
        let u = Upstream {
            base_url: "http://h".into(),
            header_name: "X-API-Key".into(),
            header_value: Arc::new(Secret::from_presented("sk_live_hidden")),
        };
        assert!(!format!("{u:?}").contains("sk_live_hidden"));
    }
}
