//! A fake upstream OAuth provider and API on 127.0.0.1:0 for the vault tests, started by the
//! test itself: `/authorize` redirects straight back with a code and the state (the person
//! logging in), `/token` does authorization_code with PKCE S256 verification and refresh_token
//! with rotation (configurable `expires_in`, and it can be told to refuse refreshes), `/revoke`
//! (RFC 7009) records what it got, and `/api/{*path}` answers only a live bearer token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What the provider accepts and issues; change it between steps through [`FakeProvider::set`].
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    /// `None`: a public client (no secret expected).
    pub client_secret: Option<String>,
    /// `expires_in` of tokens from an authorization code.
    pub code_expires_in: u64,
    /// `expires_in` of tokens from a refresh.
    pub refresh_expires_in: u64,
    /// Refuse every refresh with `invalid_grant` (the person revoked the app, say).
    pub fail_refresh: bool,
    /// Answer every revocation 503 `temporarily_unavailable` (still recorded).
    pub fail_revoke: bool,
}

/// Everything the provider saw and issued.
#[derive(Debug, Default)]
pub struct Record {
    /// Access tokens, in the order they were issued.
    pub access_tokens: Vec<String>,
    /// Refresh tokens, in the order they were issued.
    pub refresh_tokens: Vec<String>,
    pub code_grants: usize,
    pub refresh_grants: usize,
    /// Refresh attempts refused.
    pub refused_refreshes: usize,
    /// `(token, token_type_hint)` of each revocation request.
    pub revoked: Vec<(String, String)>,
    /// The bearer token of each API call (live or not).
    pub api_bearers: Vec<String>,
    /// Token requests whose PKCE verifier, redirect URI or client authentication was wrong.
    pub bad_token_requests: usize,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    record: Record,
    /// code -> (code_challenge, redirect_uri)
    codes: HashMap<String, (String, String)>,
    live_access: Vec<String>,
    live_refresh: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake provider. Dropping it stops it.
#[derive(Debug)]
pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    pub async fn start(config: Config) -> FakeProvider {
        let inner = Arc::new(Mutex::new(Inner {
            config,
            record: Record::default(),
            codes: HashMap::new(),
            live_access: Vec::new(),
            live_refresh: Vec::new(),
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/api/{*path}", get(api))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake provider");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider { base, inner, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Changes the configuration.
    pub fn set(&self, f: impl FnOnce(&mut Config)) {
        f(&mut lock(&self.inner).config);
    }

    /// Reads what the provider saw and issued.
    pub fn record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&lock(&self.inner).record)
    }

    /// Every token it issued (access and refresh), for secret scans.
    pub fn all_tokens(&self) -> Vec<String> {
        self.record(|r| {
            r.access_tokens
                .iter()
                .chain(&r.refresh_tokens)
                .cloned()
                .collect()
        })
    }
}

fn lock(inner: &Shared) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

fn random(prefix: &str) -> String {
    format!("{prefix}{}", crate::vault::random_hex())
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = lock(&s);
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let redirect_uri = get("redirect_uri");
    let ok = get("response_type") == "code"
        && get("client_id") == inner.config.client_id
        && get("code_challenge_method") == "S256"
        && !get("code_challenge").is_empty()
        && redirect_uri.starts_with("http://127.0.0.1:");
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = random("fake_code_");
    inner
        .codes
        .insert(code.clone(), (get("code_challenge"), redirect_uri.clone()));
    let mut to = url::Url::parse(&redirect_uri).expect("redirect uri");
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Redirect::to(to.as_str()).into_response()
}

/// The client id and secret from Basic authentication or the form (RFC 6749 §2.3.1).
fn client_auth(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if let Some((id, secret)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        return (decode(id), Some(decode(secret)));
    }
    (
        form.get("client_id").cloned().unwrap_or_default(),
        form.get("client_secret").cloned(),
    )
}

fn issue(inner: &mut Inner, expires_in: u64) -> Response {
    let at = random("fake_at_");
    let rt = random("fake_rt_");
    inner.live_access.push(at.clone());
    inner.live_refresh.push(rt.clone());
    inner.record.access_tokens.push(at.clone());
    inner.record.refresh_tokens.push(rt.clone());
    axum::Json(json!({
        "access_token": at,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": rt,
        "scope": "api.read api.write",
    }))
    .into_response()
}

async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&s);
    let (id, secret) = client_auth(&headers, &form);
    if id != inner.config.client_id || secret != inner.config.client_secret {
        inner.record.bad_token_requests += 1;
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some((challenge, redirect_uri)) = inner.codes.remove(&get("code")) else {
                inner.record.bad_token_requests += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier")));
            if computed != challenge || redirect_uri != get("redirect_uri") {
                inner.record.bad_token_requests += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            inner.record.code_grants += 1;
            let expires_in = inner.config.code_expires_in;
            issue(&mut inner, expires_in)
        }
        "refresh_token" => {
            let rt = get("refresh_token");
            let live = inner.live_refresh.iter().position(|t| *t == rt);
            if inner.config.fail_refresh || live.is_none() {
                inner.record.refused_refreshes += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            // Rotation: the presented refresh token is spent.
            if let Some(i) = live {
                inner.live_refresh.remove(i);
            }
            inner.record.refresh_grants += 1;
            let expires_in = inner.config.refresh_expires_in;
            issue(&mut inner, expires_in)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&s);
    let (id, secret) = client_auth(&headers, &form);
    if id != inner.config.client_id || secret != inner.config.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let hint = form.get("token_type_hint").cloned().unwrap_or_default();
    inner.record.revoked.push((token.clone(), hint));
    if inner.config.fail_revoke {
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    inner.live_access.retain(|t| *t != token);
    inner.live_refresh.retain(|t| *t != token);
    StatusCode::OK.into_response()
}

async fn api(State(s): State<Shared>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let mut inner = lock(&s);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    inner.record.api_bearers.push(bearer.clone());
    if !inner.live_access.contains(&bearer) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    axum::Json(json!({ "ok": true, "path": path })).into_response()
}
