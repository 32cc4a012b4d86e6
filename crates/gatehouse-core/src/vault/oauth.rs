//! OAuth connections: the authorization-code flow with PKCE (S256) against an upstream provider,
//! token refresh before expiry (with rotation), and RFC 7009 revocation on disconnect.
//!
//! A flow is started by [`ConnectFlows::start`] (or [`ConnectFlows::start_reconnect`]), which
//! returns the provider's authorization URL; the person logs in there and the provider redirects
//! their browser to Gatehouse's loopback callback, which hands the query to
//! [`ConnectFlows::complete`]. Pending flows live in memory in the process that started them,
//! keyed by their `state` (compared in constant time), and expire after [`FLOW_TTL`].
//!
//! The access and refresh tokens and the client secret are kept together as one small JSON
//! document in the connection's keyring entry; SQLite keeps the provider, label, scopes, expiry,
//! status and the (non-secret) client settings. No HTTP-server type appears here: the HTTP
//! client calls to the provider go through `oauth2`'s reqwest client.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;
use zeroize::Zeroize;

use super::{Vault, VaultError, keyring_user, validate_label, validate_name};
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::clock::Millis;
use crate::secret::Secret;
use crate::store::connections::{self, ConnectionRow, NewConnection, OAuthClientRow};

/// How long a started flow waits for its callback.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// An access token expiring within this margin is refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How often `gatehouse serve` looks for tokens to refresh.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The provider name stored for a provider that is not a preset.
pub const CUSTOM_PROVIDER: &str = "custom";
/// The path of the loopback callback; redirect URIs are `http://127.0.0.1:PORT` + this.
pub const CALLBACK_PATH: &str = "/connect/callback";
/// How long a call to a provider's token or revocation endpoint may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether an access token expiring at `expires_at` must be refreshed at `now` (it expires
/// within `margin`). A token without an expiry never is.
pub fn needs_refresh(expires_at: Option<Millis>, now: Millis, margin: Duration) -> bool {
    let margin = i64::try_from(margin.as_millis()).unwrap_or(i64::MAX);
    expires_at.is_some_and(|at| at.saturating_sub(margin) <= now)
}

/// The non-secret settings of the OAuth app a connection uses at its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthApp {
    /// A preset name ([`super::providers::PRESETS`]) or [`CUSTOM_PROVIDER`].
    pub provider: String,
    pub authorization_url: String,
    pub token_url: String,
    /// The RFC 7009 revocation endpoint, if the provider has one.
    pub revocation_url: Option<String>,
    pub client_id: String,
    /// The scopes requested from the provider.
    pub scopes: Vec<String>,
    /// Gateway paths are appended to it.
    pub api_base_url: String,
}

impl OAuthApp {
    /// A preset provider's app: its endpoints, and its default scopes and API URL unless given.
    pub fn preset(
        provider: &str,
        client_id: &str,
        scopes: Option<Vec<String>>,
        api_base_url: Option<&str>,
    ) -> Result<Self, VaultError> {
        let p = super::providers::preset(provider).ok_or_else(|| {
            VaultError::Invalid(format!(
                "unknown provider {provider:?}: use one of {} or {CUSTOM_PROVIDER} (with its URLs)",
                super::providers::preset_names().join(", ")
            ))
        })?;
        Ok(Self {
            provider: p.name.to_owned(),
            authorization_url: p.authorization_url.to_owned(),
            token_url: p.token_url.to_owned(),
            revocation_url: p.revocation_url.map(str::to_owned),
            client_id: client_id.to_owned(),
            scopes: scopes
                .unwrap_or_else(|| p.default_scopes.iter().map(|s| (*s).to_owned()).collect()),
            api_base_url: api_base_url.unwrap_or(p.api_base_url).to_owned(),
        })
    }

    fn extra_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        super::providers::preset(&self.provider).map_or(&[], |p| p.extra_authorize_params)
    }

    /// Checks the URLs (https, or http on a loopback host), the client id and the scopes, and
    /// normalizes the API base URL.
    fn validate(&mut self) -> Result<(), VaultError> {
        validate_endpoint("authorization", &self.authorization_url)?;
        validate_endpoint("token", &self.token_url)?;
        if let Some(u) = &self.revocation_url {
            validate_endpoint("revocation", u)?;
        }
        let (api, _) = super::validate_base_url(&self.api_base_url)?;
        self.api_base_url = api;
        if self.client_id.is_empty()
            || self.client_id.len() > 512
            || self.client_id.chars().any(char::is_control)
        {
            return Err(VaultError::Invalid(
                "the client id must be 1 to 512 characters without control characters".into(),
            ));
        }
        // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
        let scope_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        };
        if let Some(bad) = self.scopes.iter().find(|s| !scope_ok(s)) {
            return Err(VaultError::Invalid(format!(
                "{bad:?} is not an OAuth scope"
            )));
        }
        Ok(())
    }
}

/// An OAuth endpoint: https, or http only on a loopback host (a local provider, or tests).
fn validate_endpoint(what: &str, raw: &str) -> Result<(), VaultError> {
    let bad = |why: &str| VaultError::Invalid(format!("the {what} URL {raw:?} {why}"));
    let url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be https (http only on 127.0.0.1 or localhost)")),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("must not carry credentials or a fragment"));
    }
    Ok(())
}

/// What the person asks to connect.
#[derive(Debug)]
pub struct ConnectRequest {
    /// The connection's name (`/gateway/{name}/...`).
    pub name: String,
    /// Tells several accounts of one provider apart (e.g. work, personal).
    pub label: String,
    pub app: OAuthApp,
    /// The OAuth app's client secret; `None` for a public client (PKCE alone).
    pub client_secret: Option<Secret>,
}

/// The tokens and client secret of one connection, as one JSON document in its keyring entry.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredTokens(redacted)")
    }
}

impl Drop for StoredTokens {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(s) = self.refresh_token.as_mut() {
            s.zeroize();
        }
        if let Some(s) = self.client_secret.as_mut() {
            s.zeroize();
        }
    }
}

impl StoredTokens {
    fn seal(&self) -> Result<Secret, VaultError> {
        serde_json::to_string(self)
            .map(Secret::from_presented)
            .map_err(|_| VaultError::Invalid("the tokens could not be encoded".into()))
    }

    /// Parses an entry; the error never quotes it.
    fn open(secret: &Secret) -> Result<Self, VaultError> {
        serde_json::from_str(secret.expose()).map_err(|_| {
            VaultError::Keyring(
                "the keyring entry of an OAuth connection is not readable; reconnect it".into(),
            )
        })
    }
}

/// Tokens a provider issued.
struct IssuedTokens {
    access_token: Secret,
    refresh_token: Option<Secret>,
    expires_in: Option<Duration>,
    scopes: Option<Vec<String>>,
}

impl IssuedTokens {
    fn from_response(r: &BasicTokenResponse) -> Self {
        Self {
            access_token: Secret::from_presented(r.access_token().secret().clone()),
            refresh_token: r
                .refresh_token()
                .map(|t| Secret::from_presented(t.secret().clone())),
            expires_in: r.expires_in(),
            scopes: r
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str().to_owned()).collect()),
        }
    }

    fn expires_at(&self, now: Millis) -> Option<Millis> {
        self.expires_in
            .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }
}

/// Why a provider did not issue tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProviderError {
    /// The provider answered with an OAuth error (its code, e.g. `invalid_grant`).
    Rejected(String),
    /// The provider could not be reached or answered something unreadable (a message without
    /// secrets or response bodies).
    Unreachable(String),
}

/// Keeps an OAuth error code printable and short (it comes from the provider).
fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

fn provider_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, BasicErrorResponse>,
) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            ProviderError::Rejected(error_code(r.error().as_ref()))
        }
        // The parse error carries the response body, which may hold tokens: never format it.
        RequestTokenError::Parse(..) => {
            ProviderError::Unreachable("the provider's answer was not a token response".into())
        }
        RequestTokenError::Request(_) => {
            ProviderError::Unreachable("the provider could not be reached".into())
        }
        RequestTokenError::Other(_) => {
            ProviderError::Unreachable("the provider answered unexpectedly".into())
        }
    }
}

type ProviderClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn oauth_client(
    app: &OAuthApp,
    client_secret: Option<&str>,
) -> Result<ProviderClient, ProviderError> {
    let bad = |_| ProviderError::Unreachable("an endpoint URL is invalid".into());
    let client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_auth_uri(AuthUrl::new(app.authorization_url.clone()).map_err(bad)?)
        .set_token_uri(TokenUrl::new(app.token_url.clone()).map_err(bad)?);
    Ok(match client_secret {
        Some(s) => client.set_client_secret(ClientSecret::new(s.to_owned())),
        None => client,
    })
}

/// The HTTP client for providers: no redirects (a token endpoint that redirects is refused
/// rather than followed with credentials), bounded time.
pub(super) fn provider_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .unwrap_or_default()
}

async fn exchange_code(
    http: &reqwest::Client,
    app: &OAuthApp,
    client_secret: Option<&str>,
    redirect_uri: &str,
    code: String,
    verifier: PkceCodeVerifier,
) -> Result<IssuedTokens, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| ProviderError::Unreachable("the redirect URI is invalid".into()))?;
    let client = oauth_client(app, client_secret)?.set_redirect_uri(redirect);
    client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .map(|r| IssuedTokens::from_response(&r))
        .map_err(provider_error)
}

async fn exchange_refresh_token(
    http: &reqwest::Client,
    app: &OAuthApp,
    client_secret: Option<&str>,
    refresh_token: &str,
) -> Result<IssuedTokens, ProviderError> {
    let client = oauth_client(app, client_secret)?;
    let token = RefreshToken::new(refresh_token.to_owned());
    client
        .exchange_refresh_token(&token)
        .request_async(http)
        .await
        .map(|r| IssuedTokens::from_response(&r))
        .map_err(provider_error)
}

/// RFC 7009: revokes one token. Done by hand rather than through `oauth2`, which refuses a
/// plain-http endpoint even on loopback (local providers and the tests use one).
async fn revoke_token(
    http: &reqwest::Client,
    revocation_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
    token: &str,
    hint: &str,
) -> Result<(), String> {
    let mut form: Vec<(&str, &str)> = vec![("token", token), ("token_type_hint", hint)];
    let mut req = http.post(revocation_url);
    match client_secret {
        // RFC 6749 §2.3.1: both parts form-urlencoded before the Basic encoding.
        Some(secret) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(client_id), Some(enc(secret)));
        }
        None => form.push(("client_id", client_id)),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let res = req
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|_| "the provider could not be reached".to_owned())?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let code = res
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["error"].as_str().map(error_code));
    Err(match code {
        Some(c) => format!("HTTP {} {c}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    })
}

/// The query of the provider's redirect to the loopback callback.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Why a flow did not complete. Shown to the person (callback page, CLI, desktop): no secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "this sign-in is unknown to Gatehouse or was already used; nothing was changed. Start \
         connecting again"
    )]
    UnknownState,
    #[error(
        "this sign-in expired (a flow waits at most 10 minutes); nothing was changed. Start \
         connecting again"
    )]
    Expired,
    #[error("the provider did not authorize the connection: {0}")]
    Denied(String),
    #[error("the provider's redirect carried no authorization code")]
    MissingCode,
    #[error("the provider did not issue tokens: {0}")]
    Provider(String),
    #[error("the tokens could not be stored: {0}")]
    Vault(String),
}

/// New connection, or new tokens for an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowMode {
    Add,
    Reconnect,
}

struct PendingFlow {
    state: String,
    vault: Vault,
    request: ConnectRequest,
    mode: FlowMode,
    verifier: PkceCodeVerifier,
    redirect_uri: String,
    started: Instant,
    done: Option<oneshot::Sender<Result<ConnectionRow, ConnectError>>>,
}

impl PendingFlow {
    fn finish(mut self, result: Result<ConnectionRow, ConnectError>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
    }
}

/// A started flow: send the person to `authorization_url`, then await `completion`.
#[derive(Debug)]
pub struct StartedFlow {
    /// The provider's authorization URL, with `state`, the S256 `code_challenge` and the scopes.
    pub authorization_url: String,
    /// Where the provider sends the browser back (`http://127.0.0.1:PORT/connect/callback`).
    pub redirect_uri: String,
    /// The connection's name.
    pub connection: String,
    pub completion: FlowCompletion,
}

/// Resolves when the flow's callback arrives (or it expires, or the flows are dropped).
#[derive(Debug)]
pub struct FlowCompletion(oneshot::Receiver<Result<ConnectionRow, ConnectError>>);

impl FlowCompletion {
    pub async fn wait(self) -> Result<ConnectionRow, ConnectError> {
        self.0.await.unwrap_or(Err(ConnectError::Expired))
    }
}

/// The pending authorization flows of this process. Cheap to clone; clones share the flows.
#[derive(Clone)]
pub struct ConnectFlows {
    pending: Arc<Mutex<Vec<PendingFlow>>>,
    ttl: Duration,
}

impl std::fmt::Debug for ConnectFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectFlows")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for ConnectFlows {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectFlows {
    pub fn new() -> Self {
        Self::with_ttl(FLOW_TTL)
    }

    /// Flows that expire after `ttl` (tests).
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            pending: Arc::new(Mutex::new(Vec::new())),
            ttl,
        }
    }

    /// The flows of this process that the main server's `/connect/callback` completes: the
    /// desktop app starts its flows here, with the server's own redirect URI.
    pub fn shared() -> Self {
        static SHARED: OnceLock<ConnectFlows> = OnceLock::new();
        SHARED.get_or_init(Self::new).clone()
    }

    /// The redirect URI of a callback served on `127.0.0.1:port`.
    pub fn redirect_uri(port: u16) -> String {
        format!("http://127.0.0.1:{port}{CALLBACK_PATH}")
    }

    /// Starts connecting a new account: checks the request, that the name is free and that the
    /// vault is unsealed (no point logging in if the tokens cannot be kept), and returns the
    /// authorization URL. Nothing is stored until the callback completes.
    pub async fn start(
        &self,
        vault: &Vault,
        mut request: ConnectRequest,
        redirect_uri: &str,
    ) -> Result<StartedFlow, VaultError> {
        validate_name(&request.name)?;
        validate_label(&request.label)?;
        request.app.validate()?;
        if let Some(s) = &request.client_secret {
            super::validate_secret(s)?;
        }
        if vault.get(&request.name).await?.is_some() {
            return Err(VaultError::AlreadyExists(request.name));
        }
        self.begin(vault, request, FlowMode::Add, redirect_uri)
            .await
    }

    /// Starts reconnecting an existing OAuth connection (expired, or to change accounts) with
    /// its stored settings; `client_secret` replaces the stored one when given.
    pub async fn start_reconnect(
        &self,
        vault: &Vault,
        name: &str,
        client_secret: Option<Secret>,
        redirect_uri: &str,
    ) -> Result<StartedFlow, VaultError> {
        let row = vault
            .get(name)
            .await?
            .ok_or_else(|| VaultError::UnknownConnection(name.to_owned()))?;
        if row.kind != "oauth" {
            return Err(VaultError::Invalid(format!(
                "the connection {name:?} is not an OAuth connection; remove it and add it again"
            )));
        }
        let client = vault.oauth_client(name).await?;
        let client_secret = match client_secret {
            Some(s) => Some(s),
            None => vault
                .stored_tokens(&row)
                .await
                .ok()
                .and_then(|t| t.client_secret.clone().map(Secret::from_presented)),
        };
        let request = ConnectRequest {
            name: row.name.clone(),
            label: row.label.clone(),
            app: OAuthApp {
                provider: row.provider.clone(),
                authorization_url: client.authorization_url,
                token_url: client.token_url,
                revocation_url: client.revocation_url,
                client_id: client.client_id,
                scopes: row.scopes.clone(),
                api_base_url: row.base_url.clone(),
            },
            client_secret,
        };
        self.begin(vault, request, FlowMode::Reconnect, redirect_uri)
            .await
    }

    async fn begin(
        &self,
        vault: &Vault,
        request: ConnectRequest,
        mode: FlowMode,
        redirect_uri: &str,
    ) -> Result<StartedFlow, VaultError> {
        if let super::VaultStatus::Sealed { reason } = vault.status().await {
            return Err(VaultError::Sealed(reason));
        }
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| VaultError::Invalid(format!("{redirect_uri:?} is not a redirect URI")))?;
        let client = oauth_client(&request.app, None)
            .map_err(|_| VaultError::Invalid("an endpoint URL is invalid".into()))?
            .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut auth = client
            .authorize_url(|| CsrfToken::new_random_len(32))
            .add_scopes(request.app.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        for (k, v) in request.app.extra_authorize_params() {
            auth = auth.add_extra_param(*k, *v);
        }
        let (url, state) = auth.url();
        let (tx, rx) = oneshot::channel();
        let connection = request.name.clone();
        let flow = PendingFlow {
            state: state.secret().clone(),
            vault: vault.clone(),
            request,
            mode,
            verifier,
            redirect_uri: redirect_uri.to_owned(),
            started: Instant::now(),
            done: Some(tx),
        };
        let expired = {
            let mut pending = self.lock();
            let expired = self.take_expired(&mut pending);
            pending.push(flow);
            expired
        };
        for f in expired {
            f.finish(Err(ConnectError::Expired));
        }
        Ok(StartedFlow {
            authorization_url: url.to_string(),
            redirect_uri: redirect_uri.to_owned(),
            connection,
            completion: FlowCompletion(rx),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PendingFlow>> {
        // A panic while holding the lock leaves a consistent Vec; keep going.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_expired(&self, pending: &mut Vec<PendingFlow>) -> Vec<PendingFlow> {
        let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(pending)
            .into_iter()
            .partition(|f| f.started.elapsed() > self.ttl);
        *pending = live;
        expired
    }

    /// How many flows are waiting for their callback.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Completes the flow the callback's `state` names: exchanges the code (with the PKCE
    /// verifier) and stores the tokens. An unknown, reused or expired state changes nothing.
    pub async fn complete(&self, params: &CallbackParams) -> Result<ConnectionRow, ConnectError> {
        let presented = params.state.as_deref().unwrap_or_default();
        let (flow, expired) = {
            let mut pending = self.lock();
            // Every pending state is compared, each in constant time, so the answer's timing
            // says nothing about how much of a state was right.
            let mut found = None;
            for (i, f) in pending.iter().enumerate() {
                let same: bool = f.state.as_bytes().ct_eq(presented.as_bytes()).into();
                if same && !presented.is_empty() {
                    found = Some(i);
                }
            }
            let flow = found.map(|i| pending.swap_remove(i));
            (flow, self.take_expired(&mut pending))
        };
        for f in expired {
            f.finish(Err(ConnectError::Expired));
        }
        let Some(flow) = flow else {
            return Err(ConnectError::UnknownState);
        };
        if flow.started.elapsed() > self.ttl {
            flow.finish(Err(ConnectError::Expired));
            return Err(ConnectError::Expired);
        }
        let result = run_callback(&flow, params).await;
        flow.finish(result.clone());
        result
    }
}

async fn run_callback(
    flow: &PendingFlow,
    params: &CallbackParams,
) -> Result<ConnectionRow, ConnectError> {
    if let Some(error) = &params.error {
        return Err(ConnectError::Denied(error_code(error)));
    }
    let code = params.code.clone().ok_or(ConnectError::MissingCode)?;
    let verifier = PkceCodeVerifier::new(flow.verifier.secret().clone());
    let secret = flow.request.client_secret.as_ref().map(Secret::expose);
    let tokens = exchange_code(
        &flow.vault.http,
        &flow.request.app,
        secret,
        &flow.redirect_uri,
        code,
        verifier,
    )
    .await
    .map_err(|e| match e {
        ProviderError::Rejected(c) | ProviderError::Unreachable(c) => ConnectError::Provider(c),
    })?;
    flow.vault
        .store_connected(&flow.request, tokens, flow.mode)
        .await
        .map_err(|e| ConnectError::Vault(e.to_string()))
}

impl Vault {
    /// The OAuth client settings of an `oauth` connection.
    pub async fn oauth_client(&self, name: &str) -> Result<OAuthClientRow, VaultError> {
        let owned = name.to_owned();
        self.store
            .read(move |c| connections::oauth_client(c, &owned).map_err(VaultError::from))
            .await?
            .ok_or_else(|| {
                VaultError::Invalid(format!("the connection {name:?} has no OAuth settings"))
            })
    }

    async fn stored_tokens(&self, row: &ConnectionRow) -> Result<StoredTokens, VaultError> {
        let user = row.keyring_ref.clone();
        let secret = self.blocking(move |c| c.get(&user)).await?.ok_or_else(|| {
            VaultError::Keyring(format!(
                "the keyring has no entry for the connection {:?}; reconnect it",
                row.name
            ))
        })?;
        StoredTokens::open(&secret)
    }

    fn refresh_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refresh_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// Stores the tokens of a completed flow: a new connection (`connection.added`) or new
    /// tokens for an existing one (`connection.reconnected`, active again).
    async fn store_connected(
        &self,
        request: &ConnectRequest,
        tokens: IssuedTokens,
        mode: FlowMode,
    ) -> Result<ConnectionRow, VaultError> {
        let lock = self.refresh_lock(&request.name);
        let _serialized = lock.lock().await;
        let now = self.clock.now();
        let user = keyring_user(&request.name);
        let stored = StoredTokens {
            access_token: tokens.access_token.expose().to_owned(),
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            client_secret: request
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
        };
        let sealed = stored.seal()?;
        let expires_at = tokens.expires_at(now);
        let has_refresh_token = tokens.refresh_token.is_some();
        let scopes = tokens
            .scopes
            .clone()
            .unwrap_or_else(|| request.app.scopes.clone());
        let name = request.name.clone();
        if mode == FlowMode::Add && self.get(&name).await?.is_some() {
            return Err(VaultError::AlreadyExists(name));
        }
        {
            let user = user.clone();
            self.blocking(move |c| c.put(&user, &sealed)).await?;
        }
        let (label, app) = (request.label.clone(), request.app.clone());
        let provider_host = url::Url::parse(&app.authorization_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let written = {
            let (name, user) = (name.clone(), user.clone());
            self.store
                .write(move |tx| -> Result<ConnectionRow, VaultError> {
                    let existing = connections::get(tx.conn(), &name)?;
                    let kind = match (mode, existing) {
                        (FlowMode::Add, Some(_)) => return Err(VaultError::AlreadyExists(name)),
                        (FlowMode::Add, None) => {
                            let id = connections::insert(
                                tx.conn(),
                                &NewConnection {
                                    name: &name,
                                    kind: "oauth",
                                    provider: &app.provider,
                                    label: &label,
                                    base_url: &app.api_base_url,
                                    header_name: None,
                                    scopes: &scopes,
                                    keyring_ref: &user,
                                    expires_at,
                                },
                                tx.now(),
                            )?;
                            connections::insert_oauth_client(
                                tx.conn(),
                                id,
                                &OAuthClientRow {
                                    authorization_url: app.authorization_url.clone(),
                                    token_url: app.token_url.clone(),
                                    revocation_url: app.revocation_url.clone(),
                                    client_id: app.client_id.clone(),
                                    refreshed_at: None,
                                    last_error: None,
                                },
                            )?;
                            EventKind::ConnectionAdded
                        }
                        (FlowMode::Reconnect, None) => {
                            return Err(VaultError::UnknownConnection(name));
                        }
                        (FlowMode::Reconnect, Some(_)) => {
                            connections::set_oauth_tokens(
                                tx.conn(),
                                &name,
                                &scopes,
                                expires_at,
                                None,
                            )?;
                            EventKind::ConnectionReconnected
                        }
                    };
                    let row = connections::get(tx.conn(), &name)?
                        .ok_or_else(|| VaultError::UnknownConnection(name.clone()))?;
                    tx.append(NewEvent::new(
                        kind,
                        Outcome::Ok,
                        None,
                        serde_json::json!({
                            "connection": row.name,
                            "kind": row.kind,
                            "provider": row.provider,
                            "provider_host": provider_host,
                            "label": row.label,
                            "base_url": row.base_url,
                            "scopes": row.scopes,
                            "expires_at": row.expires_at,
                            "refresh_token_issued": has_refresh_token,
                            "keyring_ref": row.keyring_ref,
                        }),
                    ))?;
                    Ok(row)
                })
                .await
        };
        match written {
            Ok(row) => Ok(row),
            Err(e @ VaultError::AlreadyExists(_)) => Err(e),
            Err(e) if mode == FlowMode::Add => {
                let _ = self.blocking(move |c| c.delete(&user)).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// An `oauth` connection's credential, refreshed first when it expires within
    /// [`REFRESH_MARGIN`]. If the provider cannot be reached but the token is still valid, the
    /// token is used as is; if the provider refuses the refresh, the connection is expired.
    pub(super) async fn oauth_credential(
        &self,
        row: ConnectionRow,
    ) -> Result<(ConnectionRow, Secret), VaultError> {
        let now = self.clock.now();
        let row = if needs_refresh(row.expires_at, now, REFRESH_MARGIN) {
            match self.refresh(&row.name).await {
                Ok(fresh) => fresh,
                Err(VaultError::Upstream(why)) if row.expires_at.is_some_and(|at| at > now) => {
                    tracing::warn!(connection = %row.name, reason = %why, "could not refresh a token that is still valid; using it");
                    row
                }
                Err(e) => return Err(e),
            }
        } else {
            row
        };
        let stored = self.stored_tokens(&row).await?;
        let value = Secret::from_presented(format!("Bearer {}", stored.access_token));
        Ok((row, value))
    }

    /// Refreshes an `oauth` connection's tokens if they expire within [`REFRESH_MARGIN`] (one
    /// refresh at a time per connection; a caller that waited finds them fresh). A refused
    /// refresh expires the connection (`connection.expired`) and answers
    /// [`VaultError::NotActive`]; an unreachable provider answers [`VaultError::Upstream`].
    pub async fn refresh(&self, name: &str) -> Result<ConnectionRow, VaultError> {
        let lock = self.refresh_lock(name);
        let _serialized = lock.lock().await;
        let row = self
            .get(name)
            .await?
            .ok_or_else(|| VaultError::UnknownConnection(name.to_owned()))?;
        if row.kind != "oauth" {
            return Err(VaultError::Invalid(format!(
                "the connection {name:?} is not an OAuth connection"
            )));
        }
        if row.status != "active" {
            return Err(VaultError::NotActive {
                name: row.name,
                status: row.status,
            });
        }
        let now = self.clock.now();
        if !needs_refresh(row.expires_at, now, REFRESH_MARGIN) {
            return Ok(row);
        }
        let client = self.oauth_client(name).await?;
        let stored = self.stored_tokens(&row).await?;
        let Some(refresh_token) = stored.refresh_token.clone() else {
            if row.expires_at.is_some_and(|at| at <= now) {
                return self.expire(&row, "no_refresh_token").await;
            }
            return Ok(row);
        };
        let app = OAuthApp {
            provider: row.provider.clone(),
            authorization_url: client.authorization_url,
            token_url: client.token_url,
            revocation_url: client.revocation_url,
            client_id: client.client_id,
            scopes: row.scopes.clone(),
            api_base_url: row.base_url.clone(),
        };
        let issued = exchange_refresh_token(
            &self.http,
            &app,
            stored.client_secret.as_deref(),
            &refresh_token,
        )
        .await;
        let tokens = match issued {
            Ok(t) => t,
            Err(ProviderError::Rejected(code)) => return self.expire(&row, &code).await,
            Err(ProviderError::Unreachable(why)) => return Err(VaultError::Upstream(why)),
        };
        let rotated = tokens.refresh_token.is_some();
        let fresh = StoredTokens {
            access_token: tokens.access_token.expose().to_owned(),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .or_else(|| stored.refresh_token.clone()),
            client_secret: stored.client_secret.clone(),
        };
        let sealed = fresh.seal()?;
        {
            let user = row.keyring_ref.clone();
            self.blocking(move |c| c.put(&user, &sealed)).await?;
        }
        let now = self.clock.now();
        let expires_at = tokens.expires_at(now);
        let scopes = tokens.scopes.clone().unwrap_or_else(|| row.scopes.clone());
        let name = row.name.clone();
        self.store
            .write(move |tx| -> Result<ConnectionRow, VaultError> {
                if !connections::set_oauth_tokens(
                    tx.conn(),
                    &name,
                    &scopes,
                    expires_at,
                    Some(tx.now()),
                )? {
                    return Err(VaultError::UnknownConnection(name));
                }
                let row = connections::get(tx.conn(), &name)?
                    .ok_or_else(|| VaultError::UnknownConnection(name.clone()))?;
                tx.append(NewEvent::new(
                    EventKind::ConnectionRefreshed,
                    Outcome::Ok,
                    None,
                    serde_json::json!({
                        "connection": row.name,
                        "provider": row.provider,
                        "expires_at": row.expires_at,
                        "refresh_token_rotated": rotated,
                    }),
                ))?;
                Ok(row)
            })
            .await
    }

    /// Marks a connection expired after a refused refresh; answers `NotActive`.
    async fn expire(&self, row: &ConnectionRow, code: &str) -> Result<ConnectionRow, VaultError> {
        let (name, provider, code) = (row.name.clone(), row.provider.clone(), code.to_owned());
        self.store
            .write(move |tx| -> Result<(), VaultError> {
                if connections::mark_expired(tx.conn(), &name, &code)? {
                    tx.append(NewEvent::new(
                        EventKind::ConnectionExpired,
                        Outcome::Rejected,
                        None,
                        serde_json::json!({
                            "connection": name,
                            "provider": provider,
                            "reason": format!("the provider refused the refresh: {code}"),
                        }),
                    ))?;
                }
                Ok(())
            })
            .await?;
        tracing::warn!(connection = %row.name, "the provider refused to refresh the connection's token; it is now expired");
        Err(VaultError::NotActive {
            name: row.name.clone(),
            status: "expired".into(),
        })
    }

    /// Refreshes every active OAuth connection expiring within [`REFRESH_MARGIN`]; returns how
    /// many were refreshed. Failures are logged (without secrets) and do not stop the others.
    pub async fn refresh_due(&self) -> usize {
        let rows = match self.list().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the connections to refresh");
                return 0;
            }
        };
        let now = self.clock.now();
        let mut refreshed = 0;
        for row in rows {
            if row.kind != "oauth"
                || row.status != "active"
                || !needs_refresh(row.expires_at, now, REFRESH_MARGIN)
            {
                continue;
            }
            match self.refresh(&row.name).await {
                Ok(_) => refreshed += 1,
                Err(e) => {
                    tracing::warn!(connection = %row.name, error = %e, "could not refresh a connection")
                }
            }
        }
        refreshed
    }

    /// Runs [`Vault::refresh_due`] every `every`, forever (spawn it; abort to stop).
    pub async fn refresh_loop(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh_due().await;
        }
    }

    /// RFC 7009 revocation of an `oauth` connection's tokens at its provider (refresh token,
    /// then access token): `ok`, `failed: <reason>` or `not_supported`. A sealed vault fails.
    pub(super) async fn revoke_upstream(&self, row: &ConnectionRow) -> Result<String, VaultError> {
        let client = match self.oauth_client(&row.name).await {
            Ok(c) => c,
            Err(_) => return Ok("failed: the connection has no OAuth settings".into()),
        };
        let stored = match self.stored_tokens(row).await {
            Ok(s) => s,
            Err(e @ VaultError::Sealed(_)) => return Err(e),
            Err(_) => {
                return Ok(if client.revocation_url.is_none() {
                    "not_supported".into()
                } else {
                    "failed: the keyring had no tokens to revoke".into()
                });
            }
        };
        let Some(url) = client.revocation_url.as_deref() else {
            return Ok("not_supported".into());
        };
        let secret = stored.client_secret.as_deref();
        let mut failures = Vec::new();
        if let Some(rt) = stored.refresh_token.as_deref()
            && let Err(why) = revoke_token(
                &self.http,
                url,
                &client.client_id,
                secret,
                rt,
                "refresh_token",
            )
            .await
        {
            failures.push(format!("refresh token: {why}"));
        }
        if let Err(why) = revoke_token(
            &self.http,
            url,
            &client.client_id,
            secret,
            &stored.access_token,
            "access_token",
        )
        .await
        {
            failures.push(format!("access token: {why}"));
        }
        Ok(if failures.is_empty() {
            "ok".into()
        } else {
            format!("failed: {}", failures.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_due_inside_the_margin_only() {
        let margin = Duration::from_secs(300);
        let now = 1_000_000_000;
        assert!(!needs_refresh(None, now, margin));
        assert!(!needs_refresh(Some(now + 301_000), now, margin));
        assert!(needs_refresh(Some(now + 300_000), now, margin));
        assert!(needs_refresh(Some(now + 60_000), now, margin));
        assert!(needs_refresh(Some(now - 1), now, margin));
        assert!(needs_refresh(Some(i64::MIN), now, margin));
        assert!(!needs_refresh(Some(i64::MAX), now, margin));
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        for ok in [
            "https://idp.example/authorize",
            "http://127.0.0.1:9000/token",
            "http://localhost/token",
            "http://[::1]:80/x",
        ] {
            assert!(validate_endpoint("token", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example/token",
            "ftp://127.0.0.1/x",
            "https://u:p@idp.example/t",
            "https://idp.example/t#f",
            "/relative",
        ] {
            assert!(validate_endpoint("token", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn presets_fill_the_app_and_scopes_are_checked() {
        let mut app = OAuthApp::preset("google", "cid", None, None).expect("preset");
        assert_eq!(app.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(app.scopes, ["openid", "email", "profile"]);
        assert!(app.validate().is_ok());
        assert_eq!(app.extra_authorize_params().len(), 2);
        assert!(OAuthApp::preset("nope", "cid", None, None).is_err());
        let mut bad =
            OAuthApp::preset("github", "cid", Some(vec!["a b".into()]), None).expect("preset");
        assert!(bad.validate().is_err());
        let mut no_client = OAuthApp::preset("github", "", None, None).expect("preset");
        assert!(no_client.validate().is_err());
    }

    #[test]
    fn stored_tokens_never_show_in_debug_and_round_trip() {
        let t = StoredTokens {
            access_token: "at-123".into(),
            refresh_token: Some("rt-456".into()),
            client_secret: None,
        };
        assert!(!format!("{t:?}").contains("at-123"));
        let sealed = t.seal().expect("seal");
        let back = StoredTokens::open(&sealed).expect("open");
        assert_eq!(back.refresh_token.as_deref(), Some("rt-456"));
        assert!(!sealed.expose().contains("client_secret"));
        let err = StoredTokens::open(&Secret::from_presented("plain-api-key")).expect_err("bad");
        assert!(!err.to_string().contains("plain-api-key"));
    }

    fn vault() -> (tempfile::TempDir, Vault, Arc<super::super::MemoryStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(
            dir.path(),
            crate::store::StoreOptions::default(),
            Arc::new(crate::clock::SystemClock),
        )
        .expect("store");
        let mem = Arc::new(super::super::MemoryStore::new());
        (dir, Vault::new(store, mem.clone()), mem)
    }

    /// A custom provider whose token endpoint does not answer (port 1 on loopback).
    fn request(name: &str) -> ConnectRequest {
        ConnectRequest {
            name: name.into(),
            label: "work".into(),
            app: OAuthApp {
                provider: CUSTOM_PROVIDER.into(),
                authorization_url: "https://idp.example/authorize".into(),
                token_url: "http://127.0.0.1:1/token".into(),
                revocation_url: None,
                client_id: "cid".into(),
                scopes: vec!["a".into(), "b".into()],
                api_base_url: "https://api.example".into(),
            },
            client_secret: Some(Secret::from_presented("client-secret")),
        }
    }

    const REDIRECT: &str = "http://127.0.0.1:5555/connect/callback";

    fn param(url: &str, name: &str) -> String {
        url::Url::parse(url)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    fn callback(state: &str) -> CallbackParams {
        CallbackParams {
            state: Some(state.into()),
            code: Some("code".into()),
            ..CallbackParams::default()
        }
    }

    #[tokio::test]
    async fn the_authorization_url_carries_pkce_state_and_scopes() {
        let (_dir, v, _mem) = vault();
        let flows = ConnectFlows::new();
        let started = flows
            .start(&v, request("gh"), REDIRECT)
            .await
            .expect("start");
        let url = &started.authorization_url;
        assert!(url.starts_with("https://idp.example/authorize?"), "{url}");
        assert_eq!(param(url, "response_type"), "code");
        assert_eq!(param(url, "code_challenge_method"), "S256");
        assert_eq!(param(url, "code_challenge").len(), 43);
        assert_eq!(param(url, "redirect_uri"), REDIRECT);
        assert_eq!(param(url, "scope"), "a b");
        assert!(param(url, "state").len() >= 40);
        assert!(!url.contains("client-secret"));
        assert_eq!(flows.pending(), 1);
    }

    #[tokio::test]
    async fn a_wrong_state_changes_nothing_and_a_state_works_once() {
        let (_dir, v, mem) = vault();
        let flows = ConnectFlows::new();
        let started = flows
            .start(&v, request("gh"), REDIRECT)
            .await
            .expect("start");
        let state = param(&started.authorization_url, "state");
        for bad in ["", "nope", &format!("{state}x"), &state[1..]] {
            assert_eq!(
                flows.complete(&callback(bad)).await,
                Err(ConnectError::UnknownState),
                "{bad:?}"
            );
        }
        assert_eq!(
            flows.pending(),
            1,
            "a wrong state does not consume the flow"
        );
        // The right state consumes the flow, whatever the exchange gives (here: no provider).
        let first = flows.complete(&callback(&state)).await;
        assert!(matches!(first, Err(ConnectError::Provider(_))), "{first:?}");
        assert_eq!(started.completion.wait().await, first);
        assert_eq!(
            flows.complete(&callback(&state)).await,
            Err(ConnectError::UnknownState),
            "a replayed state is refused"
        );
        assert_eq!(flows.pending(), 0);
        assert!(v.list().await.expect("list").is_empty());
        assert!(!mem.contains("connection:gh"));
    }

    #[tokio::test]
    async fn expired_denied_sealed_and_taken_names() {
        let (_dir, v, mem) = vault();
        let flows = ConnectFlows::with_ttl(Duration::ZERO);
        let started = flows
            .start(&v, request("gh"), REDIRECT)
            .await
            .expect("start");
        let state = param(&started.authorization_url, "state");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            flows.complete(&callback(&state)).await,
            Err(ConnectError::Expired)
        );
        assert_eq!(started.completion.wait().await, Err(ConnectError::Expired));

        let flows = ConnectFlows::new();
        let started = flows
            .start(&v, request("gh"), REDIRECT)
            .await
            .expect("start");
        let state = param(&started.authorization_url, "state");
        let denied = CallbackParams {
            state: Some(state),
            error: Some("access_denied".into()),
            ..CallbackParams::default()
        };
        assert_eq!(
            flows.complete(&denied).await,
            Err(ConnectError::Denied("access_denied".into()))
        );

        mem.set_sealed(true);
        assert!(matches!(
            flows.start(&v, request("gh"), REDIRECT).await,
            Err(VaultError::Sealed(_))
        ));
        mem.set_sealed(false);
        v.add_bearer(
            "taken",
            "https://x.example",
            "",
            Secret::from_presented("t"),
        )
        .await
        .expect("add");
        assert!(matches!(
            flows.start(&v, request("taken"), REDIRECT).await,
            Err(VaultError::AlreadyExists(_))
        ));
        let mut bad = request("ok");
        bad.app.token_url = "http://idp.example/token".into();
        assert!(matches!(
            flows.start(&v, bad, REDIRECT).await,
            Err(VaultError::Invalid(_))
        ));
        assert!(matches!(
            flows.start_reconnect(&v, "taken", None, REDIRECT).await,
            Err(VaultError::Invalid(_))
        ));
        assert_eq!(flows.pending(), 0);
    }

    #[tokio::test]
    async fn the_injected_clock_decides_refresh_and_an_unreachable_provider_is_survived_until_expiry()
     {
        let (_dir, v, mem) = vault();
        let clock = Arc::new(crate::clock::ManualClock::new(1_000_000_000_000));
        let v = v.with_clock(clock.clone());
        let tokens = IssuedTokens {
            access_token: Secret::from_presented("at-1"),
            refresh_token: Some(Secret::from_presented("rt-1")),
            expires_in: Some(Duration::from_secs(3600)),
            scopes: None,
        };
        // The token endpoint (127.0.0.1:1) never answers.
        let row = v
            .store_connected(&request("gh"), tokens, FlowMode::Add)
            .await
            .expect("store");
        assert_eq!(row.kind, "oauth");
        assert_eq!(row.expires_at, Some(1_000_000_000_000 + 3_600_000));
        assert!(mem.contains("connection:gh"));

        // Outside the margin: no refresh is tried, the stored token is used.
        let (_, cred) = v.credential("gh").await.expect("credential");
        assert_eq!(cred.value.expose(), "Bearer at-1");
        // Inside the margin, provider unreachable: the still-valid token is used, still active.
        clock.advance(Duration::from_secs(3600 - 120));
        let (row, cred) = v.credential("gh").await.expect("credential");
        assert_eq!(cred.value.expose(), "Bearer at-1");
        assert_eq!(row.status, "active");
        // Past expiry, provider unreachable: an error, but not expired (the provider refused
        // nothing; the next call tries again).
        clock.advance(Duration::from_secs(121));
        let err = v.credential("gh").await.expect_err("expired token");
        assert!(matches!(err, VaultError::Upstream(_)), "{err}");
        assert!(!err.to_string().contains("at-1") && !err.to_string().contains("rt-1"));
        assert_eq!(
            v.get("gh").await.expect("get").expect("row").status,
            "active"
        );
        assert_eq!(v.refresh_due().await, 0);

        // Disconnect without a revocation endpoint: not_supported, entry gone.
        let removed = v.remove("gh", "test").await.expect("remove");
        assert_eq!(
            removed.upstream_revocation.as_deref(),
            Some("not_supported")
        );
        assert!(!mem.contains("connection:gh"));
    }

    #[test]
    fn provider_error_codes_are_trimmed() {
        assert_eq!(error_code("invalid_grant"), "invalid_grant");
        assert_eq!(error_code("bad\r\n<script>"), "badscript");
        assert_eq!(error_code(&"x".repeat(100)).len(), 64);
    }
}
