//! The OAuth 2.1 authorization server, end to end: the real `gatehouse serve` on a fresh temp data
//! dir, driven over loopback HTTP, with consent answered through the jsonl approver.
//!
//! The happy path runs through the independent `oauth2` crate (discovery, PKCE, code exchange,
//! refresh, revocation, introspection); each rule of the issue is then pinned by a negative test
//! with raw `reqwest`. Every response any test reads is checked for CORS headers, and every OAuth
//! JSON error for `Cache-Control: no-store`.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use gatehouse_e2e::reply::{Reply, send};
use gatehouse_e2e::{Server, assert_no_cors_headers, flow, pkce_pair};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, HttpClientError, HttpRequest, HttpResponse, IntrospectionUrl,
    PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};
use tempfile::TempDir;
use url::Url;

/// The client's redirect URI. Nothing listens there: tests read the `Location` instead.
const REDIRECT: &str = "http://127.0.0.1:7777/callback";
/// An opaque state with characters that must survive URL encoding both ways.
const STATE: &str = "e2e state/&=?+~";
const API: &str = "https://api.example.com/";
const MAIL: &str = "https://mail.example.com/v1";

// ---- harness -----------------------------------------------------------------------------------

/// A fresh `gatehouse serve --approver jsonl` on its own temp data dir, and an HTTP client that
/// never follows redirects.
struct Gatehouse {
    // Fields drop in order: the server stops before its data dir is removed.
    server: Server,
    http: reqwest::Client,
    _dir: TempDir,
}

/// A registered client as the tests use it.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    secret: Option<String>,
    auth_method: String,
}

impl Gatehouse {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp data dir");
        let server = Server::start(dir.path(), extra);
        Self {
            server,
            http: flow::http(),
            _dir: dir,
        }
    }

    fn issuer(&self) -> String {
        self.server.issuer.clone()
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// GET a path on the server, or an absolute URL.
    async fn get(&self, path_or_url: &str) -> Reply {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        send(&format!("GET {path_or_url}"), self.http.get(url)).await
    }

    async fn register(&self, metadata: Value) -> Reply {
        send(
            "POST /register",
            self.http.post(self.url("/register")).json(&metadata),
        )
        .await
    }

    /// Registers a client for the code and refresh grants with [`REDIRECT`].
    async fn register_client(&self, auth_method: &str) -> Client {
        let body = self
            .register(json!({
                "client_name": "E2E agent",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": auth_method,
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await
            .expect_json(StatusCode::CREATED);
        Client {
            id: body["client_id"].as_str().expect("client_id").to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
            auth_method: auth_method.to_owned(),
        }
    }

    /// POSTs a form, authenticating as `client` the way it registered (Basic, form secret, or
    /// just its client_id), or not at all.
    async fn post_form(&self, path: &str, client: Option<&Client>, form: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let mut req = self.http.post(self.url(path));
        if let Some(c) = client {
            match (c.auth_method.as_str(), c.secret.as_deref()) {
                ("client_secret_basic", Some(secret)) => req = req.basic_auth(&c.id, Some(secret)),
                ("client_secret_post", Some(secret)) => {
                    form.push(("client_id", &c.id));
                    form.push(("client_secret", secret));
                }
                _ => form.push(("client_id", &c.id)),
            }
        }
        send(&format!("POST {path}"), req.form(&form)).await
    }

    async fn authorize(&self, params: &[(&str, String)]) -> Reply {
        send(
            "GET /authorize",
            self.http.get(self.url("/authorize")).query(params),
        )
        .await
    }

    /// Follows an `/authorize` answer to the waiting page (checking it waits), answers the
    /// approval on the jsonl approver with `decision(approval_requested line)`, and returns that
    /// line and where the waiting page sends the browser once decided.
    async fn consent(
        &mut self,
        authorize: &Reply,
        decision: impl FnOnce(&Value) -> Value,
    ) -> (Value, Url) {
        let waiting = self.waiting_page(authorize).await;
        let id = approval_id(&waiting);
        let requested = self
            .server
            .expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
        self.server.decide(decision(&requested));
        self.server
            .expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
        let done = self.get(waiting.as_str()).await;
        (requested, done.redirect())
    }

    /// Checks that `/authorize` sent the browser to a same-origin waiting page that is waiting.
    async fn waiting_page(&self, authorize: &Reply) -> Url {
        let waiting = authorize.redirect();
        assert!(
            waiting
                .as_str()
                .starts_with(&format!("{}/consent/", self.issuer())),
            "/authorize must send the browser to Gatehouse's own waiting page, not {waiting}"
        );
        let page = self.get(waiting.as_str()).await;
        page.expect_status(StatusCode::OK);
        page.assert_unframeable_html();
        waiting
    }

    /// Checks that `/authorize` with `params` sends the browser back to the client with `error`.
    async fn assert_authorize_error(&self, params: &[(&str, String)], error: &str) {
        let reply = self.authorize(params).await;
        self.expect_redirect_error(&reply.redirect(), error);
    }

    /// Runs `/authorize` with `params`, approves the consent, and returns the code.
    async fn code_from(&mut self, params: &[(&str, String)]) -> String {
        let reply = self.authorize(params).await;
        let (_, done) = self.consent(&reply, approve).await;
        self.expect_code(&done)
    }

    /// Authorizes `client` for `scope` and `resources` and approves. Returns the code and its
    /// PKCE verifier.
    async fn approved_code(
        &mut self,
        client: &Client,
        scope: &str,
        resources: &[&str],
    ) -> (String, String) {
        let (verifier, challenge) = pkce_pair();
        let mut params = authorize_params(client, &challenge, scope);
        params.extend(resources.iter().map(|r| ("resource", r.to_string())));
        (self.code_from(&params).await, verifier)
    }

    /// Authorizes `client` for `scope` and `resources`, approves, and exchanges the code.
    /// Returns the token response.
    async fn tokens(&mut self, client: &Client, scope: &str, resources: &[&str]) -> Value {
        let (code, verifier) = self.approved_code(client, scope, resources).await;
        self.exchange(client, &code, &verifier)
            .await
            .expect_json(StatusCode::OK)
    }

    async fn exchange(&self, client: &Client, code: &str, verifier: &str) -> Reply {
        self.post_form(
            "/token",
            Some(client),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    async fn refresh(&self, client: &Client, refresh_token: &str, extra: &[(&str, &str)]) -> Reply {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        self.post_form("/token", Some(client), &form).await
    }

    /// Introspects `token` as `caller`, expecting 200.
    async fn introspect(&self, caller: &Client, token: &str) -> Value {
        self.post_form("/introspect", Some(caller), &[("token", token)])
            .await
            .expect_json(StatusCode::OK)
    }

    /// Revokes `token` as `client`, with a `token_type_hint` if given, expecting 200.
    async fn revoke(&self, client: &Client, token: &str, hint: Option<&str>) {
        let mut form = vec![("token", token)];
        form.extend(hint.map(|h| ("token_type_hint", h)));
        self.post_form("/revoke", Some(client), &form)
            .await
            .expect_status(StatusCode::OK);
    }

    async fn assert_inactive(&self, caller: &Client, token: &str, why: &str) {
        assert_eq!(
            self.introspect(caller, token).await,
            json!({ "active": false }),
            "{why}: the token must be inactive"
        );
    }

    async fn assert_active(&self, caller: &Client, token: &str, why: &str) -> Value {
        let info = self.introspect(caller, token).await;
        assert_eq!(
            info["active"], true,
            "{why}: the token must be active: {info}"
        );
        info
    }

    /// The query of an authorization response, after checking that it goes back to the client's
    /// redirect_uri with `state` unchanged and `iss` the issuer (RFC 9207). `what` names the
    /// response in the messages.
    fn authorization_response(&self, redirect: &Url, what: &str) -> HashMap<String, String> {
        let q = query(redirect);
        assert!(
            redirect.as_str().starts_with(REDIRECT),
            "{what} must go back to the client's redirect_uri, not {redirect}"
        );
        assert_eq!(
            q.get("state").map(String::as_str),
            Some(STATE),
            "{what} must bring state back unchanged: {redirect}"
        );
        assert_eq!(
            q.get("iss"),
            Some(&self.issuer()),
            "RFC 9207: {what} must carry iss, the issuer: {redirect}"
        );
        q
    }

    /// The code from a successful authorization response, after checking `state` and `iss`.
    fn expect_code(&self, redirect: &Url) -> String {
        let q = self.authorization_response(redirect, "the code");
        assert!(
            !q.contains_key("error"),
            "expected a code, got an error: {redirect}"
        );
        q.get("code")
            .unwrap_or_else(|| panic!("no code in {redirect}"))
            .clone()
    }

    /// Checks an error authorization response: back to the client with `error`, `state`, `iss`.
    fn expect_redirect_error(&self, redirect: &Url, error: &str) -> HashMap<String, String> {
        let q = self.authorization_response(redirect, "the error");
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(error),
            "wrong error in {redirect}"
        );
        assert!(
            !q.contains_key("code"),
            "an error response carries no code: {redirect}"
        );
        q
    }
}

fn authorize_params(client: &Client, challenge: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client.id.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", scope.into()),
        ("state", STATE.into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// [`authorize_params`] with a fresh PKCE challenge, for a code that is never exchanged.
fn params_for(client: &Client, scope: &str) -> Vec<(&'static str, String)> {
    authorize_params(client, &pkce_pair().1, scope)
}

fn without(mut params: Vec<(&'static str, String)>, name: &str) -> Vec<(&'static str, String)> {
    params.retain(|(k, _)| *k != name);
    params
}

fn with(
    mut params: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    params.retain(|(k, _)| *k != name);
    params.push((name, value.to_owned()));
    params
}

/// The approval id a waiting page URL is for.
fn approval_id(waiting: &Url) -> String {
    waiting
        .path_segments()
        .and_then(|mut s| s.next_back())
        .expect("approval id in the waiting page URL")
        .to_owned()
}

fn approve(requested: &Value) -> Value {
    json!({ "approve": requested["id"] })
}

fn deny(requested: &Value) -> Value {
    json!({ "deny": requested["id"] })
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {v}"))
}

fn scope_set(s: &str) -> BTreeSet<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn aud_set(info: &Value) -> BTreeSet<String> {
    match &info["aud"] {
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().expect("aud entry").to_owned())
            .collect(),
        other => panic!("introspection has no usable aud: {other} in {info}"),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The `oauth2` crate's HTTP client: reqwest without redirects, checking every response for
/// CORS headers like the raw requests do.
struct CheckedHttp(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for CheckedHttp {
    type Error = HttpClientError<reqwest::Error>;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let what = format!("oauth2 crate: {} {}", request.method(), request.uri());
            let response = self.0.call(request).await?;
            assert_no_cors_headers(response.headers().keys().map(|k| k.as_str()), &what);
            Ok(response)
        })
    }
}

/// Without a revocation endpoint: the `oauth2` crate refuses any revocation URL that is not
/// HTTPS (RFC 7009 §2 asks clients to check), and Gatehouse's loopback issuer is plain HTTP by
/// design (RFC 8252 §7.3). Revocation goes through raw requests instead.
type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointNotSet, EndpointSet>;

/// An `oauth2` crate client configured only from the discovery document.
fn oauth2_client(meta: &Value, client: &Client) -> OAuthClient {
    let endpoint = |field: &str| str_field(meta, field).to_owned();
    let mut c = BasicClient::new(ClientId::new(client.id.clone()))
        .set_auth_uri(AuthUrl::new(endpoint("authorization_endpoint")).expect("auth url"))
        .set_token_uri(TokenUrl::new(endpoint("token_endpoint")).expect("token url"))
        .set_introspection_url(
            IntrospectionUrl::new(endpoint("introspection_endpoint")).expect("introspection url"),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect url"));
    if let Some(secret) = &client.secret {
        c = c.set_client_secret(ClientSecret::new(secret.clone()));
    }
    if client.auth_method != "client_secret_basic" {
        c = c.set_auth_type(AuthType::RequestBody);
    }
    c
}

/// The OAuth error code in an `oauth2` crate token error.
fn oauth2_error<RE: std::error::Error>(
    e: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> BasicErrorResponseType {
    match e {
        RequestTokenError::ServerResponse(r) => r.error().clone(),
        other => panic!("expected an OAuth error response, got {other:?}"),
    }
}

// ---- discovery and registration ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn discovery_metadata_follows_rfc8414_and_is_the_same_at_both_well_known_paths() {
    let gh = Gatehouse::start();
    let oauth = gh.get("/.well-known/oauth-authorization-server").await;
    let oidc = gh.get("/.well-known/openid-configuration").await;
    oauth.expect_status(StatusCode::OK);
    oidc.expect_status(StatusCode::OK);
    let m = oauth.json();
    assert_eq!(
        m,
        oidc.json(),
        "both well-known documents must be identical"
    );

    assert_eq!(m["issuer"], gh.issuer());
    assert!(
        gh.issuer().starts_with("http://127.0.0.1:"),
        "the issuer is a loopback URL: {}",
        gh.issuer()
    );
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("registration_endpoint", "/register"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(m[field], gh.url(path), "{field}");
    }
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert!(
        m["scopes_supported"].is_array(),
        "scopes_supported is a list"
    );
    let list = |field: &str| -> Vec<String> {
        m[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is a list"))
            .iter()
            .map(|v| v.as_str().expect("string").to_owned())
            .collect()
    };
    for g in ["authorization_code", "refresh_token"] {
        assert!(list("grant_types_supported").contains(&g.to_owned()), "{g}");
    }
    for a in ["none", "client_secret_basic", "client_secret_post"] {
        assert!(
            list("token_endpoint_auth_methods_supported").contains(&a.to_owned()),
            "{a}"
        );
    }
    assert!(
        !list("introspection_endpoint_auth_methods_supported").contains(&"none".to_owned()),
        "introspection needs client authentication"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_follows_rfc7591_for_public_and_confidential_clients() {
    let gh = Gatehouse::start();
    let before = now_secs();

    let public = gh
        .register(json!({
            "client_name": "Public agent",
            "redirect_uris": ["http://127.0.0.1/callback", "com.example.agent:/oauth2redirect"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        }))
        .await;
    public.expect_status(StatusCode::CREATED);
    let p = public.json();
    assert!(str_field(&p, "client_id").len() >= 16, "{p}");
    assert_eq!(
        p["redirect_uris"],
        json!([
            "http://127.0.0.1/callback",
            "com.example.agent:/oauth2redirect"
        ])
    );
    assert_eq!(p["token_endpoint_auth_method"], "none");
    assert_eq!(p["application_type"], "native");
    let issued = p["client_id_issued_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("client_id_issued_at is a number of seconds: {p}"));
    assert!(
        (before - 5..=now_secs() + 5).contains(&issued),
        "client_id_issued_at {issued} is now, in seconds"
    );
    assert!(
        p.get("client_secret").is_none() && p.get("client_secret_expires_at").is_none(),
        "a public client gets no secret: {p}"
    );

    for (method, sent) in [
        ("client_secret_basic", None),
        ("client_secret_basic", Some("client_secret_basic")),
        ("client_secret_post", Some("client_secret_post")),
    ] {
        let mut metadata = json!({
            "redirect_uris": ["https://agent.example.com/cb"],
            "application_type": "web",
        });
        if let Some(m) = sent {
            metadata["token_endpoint_auth_method"] = m.into();
        }
        let reply = gh.register(metadata).await;
        reply.expect_status(StatusCode::CREATED);
        let c = reply.json();
        assert_eq!(
            c["token_endpoint_auth_method"], method,
            "RFC 7591 default is client_secret_basic: {c}"
        );
        assert_eq!(c["redirect_uris"], json!(["https://agent.example.com/cb"]));
        assert!(
            str_field(&c, "client_secret").len() >= 32,
            "a confidential client gets a strong secret: {c}"
        );
        assert_eq!(c["client_secret_expires_at"], 0, "0 means never: {c}");
        assert!(c["client_id_issued_at"].is_i64(), "{c}");
        assert!(
            reply
                .header(header::CACHE_CONTROL)
                .is_some_and(|v| v.contains("no-store")),
            "a response carrying a secret must not be cached"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_refuses_redirect_uris_that_are_not_loopback_http_https_or_private_use() {
    let gh = Gatehouse::start();
    for bad in [
        "http://agent.example.com/callback",
        "http://127.0.0.1:7777/callback#fragment",
        "https://agent.example.com/cb#",
        "javascript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "/relative/callback",
    ] {
        let reply = gh
            .register(json!({ "redirect_uris": [bad], "token_endpoint_auth_method": "none" }))
            .await;
        reply.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri");
    }
}

// ---- the whole flow through an independent client library ----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_oauth2_crate_completes_consent_code_exchange_refresh_revocation_and_introspection() {
    let mut gh = Gatehouse::start();
    let meta = gh
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    let agent = gh.register_client("client_secret_basic").await;
    let oauth = oauth2_client(&meta, &agent);
    let http = CheckedHttp(flow::http());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("files:read".into()))
        .add_scope(Scope::new("files:write".into()))
        .add_extra_param("resource", API)
        .set_pkce_challenge(challenge)
        .url();
    let reply = gh.get(auth_url.as_str()).await;
    let (requested, done) = gh.consent(&reply, approve).await;
    assert_eq!(requested["client_id"], agent.id.as_str());
    assert_eq!(requested["scopes"], json!(["files:read", "files:write"]));

    let q = query(&done);
    assert!(done.as_str().starts_with(REDIRECT), "{done}");
    assert_eq!(q.get("state"), Some(csrf.secret()), "state round-trips");
    assert_eq!(q.get("iss"), Some(&gh.issuer()), "RFC 9207 iss");
    let code = q.get("code").expect("code").clone();

    let first = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the oauth2 crate exchanges the code");
    let at1 = first.access_token().clone();
    let rt1 = first.refresh_token().expect("a refresh token").clone();
    assert!(at1.secret().starts_with("gth_at_"), "prefixed access token");
    assert!(
        rt1.secret().starts_with("gth_rt_"),
        "prefixed refresh token"
    );
    let lifetime = first.expires_in().expect("expires_in");
    assert!(
        lifetime > Duration::ZERO && lifetime <= Duration::from_secs(3600),
        "access tokens are short-lived: {lifetime:?}"
    );

    let info = oauth
        .introspect(&at1)
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active(), "a fresh access token is active");
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(agent.id.as_str())
    );
    let scopes: BTreeSet<String> = info
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, scope_set("files:read files:write"));
    assert!(info.exp().is_some_and(|e| e.timestamp() > now_secs()));
    assert_eq!(info.aud(), Some(&vec![API.to_owned()]), "RFC 8707 audience");

    let second = oauth
        .exchange_refresh_token(&rt1)
        .request_async(&http)
        .await
        .expect("the oauth2 crate refreshes");
    let at2 = second.access_token().clone();
    let rt2 = second
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(at2.secret(), at1.secret());
    assert_ne!(rt2.secret(), rt1.secret(), "refresh tokens rotate");
    gh.assert_inactive(&agent, rt1.secret(), "a rotated refresh token")
        .await;

    // RFC 7009: revoking an access token revokes only that token.
    gh.revoke(&agent, at2.secret(), Some("access_token")).await;
    gh.assert_inactive(&agent, at2.secret(), "a revoked access token")
        .await;
    gh.assert_active(
        &agent,
        rt2.secret(),
        "the refresh token of a revoked access token",
    )
    .await;
    gh.assert_active(&agent, at1.secret(), "an older access token of the grant")
        .await;

    // Revoking a refresh token revokes the whole grant.
    gh.revoke(&agent, rt2.secret(), Some("refresh_token")).await;
    gh.assert_inactive(&agent, rt2.secret(), "a revoked refresh token")
        .await;
    gh.assert_inactive(&agent, at1.secret(), "an access token of a revoked grant")
        .await;
    let err = oauth
        .exchange_refresh_token(&rt2)
        .request_async(&http)
        .await
        .expect_err("a revoked refresh token cannot refresh");
    assert_eq!(oauth2_error(err), BasicErrorResponseType::InvalidGrant);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_endpoint_auth_method_can_exchange_a_code_with_the_oauth2_crate() {
    let mut gh = Gatehouse::start();
    let meta = gh.get("/.well-known/openid-configuration").await.json();
    let http = CheckedHttp(flow::http());
    for method in ["none", "client_secret_post", "client_secret_basic"] {
        let agent = gh.register_client(method).await;
        let oauth = oauth2_client(&meta, &agent);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let params = authorize_params(&agent, challenge.as_str(), "notes:read");
        let code = gh.code_from(&params).await;
        let tokens = oauth
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{method}: code exchange failed: {e:?}"));
        let refreshed = oauth
            .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{method}: refresh failed: {e:?}"));
        assert!(refreshed.access_token().secret().starts_with("gth_at_"));
    }
}

// ---- consent through the jsonl approver ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_approval_requested_line_carries_the_contract_fields() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let params = params_for(&agent, "files:read mail:send");
    let params = with(with(params, "resource", API), "prompt", "consent");
    let reply = gh.authorize(&params).await;
    let waiting = gh.waiting_page(&reply).await;
    let line = gh.server.expect_event("approval_requested");
    let fields = line.as_object().expect("a JSON object");
    for key in [
        "id",
        "kind",
        "client_id",
        "client_name",
        "scopes",
        "resources",
        "authorization_details",
        "binding_message",
        "expires_at",
    ] {
        assert!(
            fields.contains_key(key),
            "approval_requested lacks {key}: {line}"
        );
    }
    assert_eq!(line["id"], approval_id(&waiting).as_str());
    assert_eq!(line["kind"], "consent");
    assert_eq!(line["client_id"], agent.id.as_str());
    assert_eq!(line["client_name"], "E2E agent");
    assert_eq!(line["scopes"], json!(["files:read", "mail:send"]));
    assert_eq!(line["resources"], json!([API]));
    assert!(
        !line["expires_at"].is_null(),
        "expires_at must say when: {line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_consent_redirects_with_access_denied_state_and_iss() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let reply = gh.authorize(&params_for(&agent, "files:read")).await;
    let (_, done) = gh.consent(&reply, deny).await;
    gh.expect_redirect_error(&done, "access_denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_that_expires_redirects_with_access_denied_saying_it_expired() {
    let mut gh = Gatehouse::start_with(&["--approval-timeout", "1"]);
    let agent = gh.register_client("none").await;
    let reply = gh.authorize(&params_for(&agent, "files:read")).await;
    let waiting = gh.waiting_page(&reply).await;
    let id = approval_id(&waiting);
    gh.server
        .expect_event_matching("approval_requested", |v| v["id"] == id.as_str());

    let deadline = Instant::now() + Duration::from_secs(15);
    let done = loop {
        let page = gh.get(waiting.as_str()).await;
        if page.status == StatusCode::SEE_OTHER {
            break page.redirect();
        }
        page.expect_status(StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "the approval never expired (1 s timeout)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let q = gh.expect_redirect_error(&done, "access_denied");
    let description = q.get("error_description").cloned().unwrap_or_default();
    assert!(
        description.to_lowercase().contains("expire"),
        "error_description must say the request expired: {description:?}"
    );
    let decided = gh
        .server
        .expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
    assert_eq!(decided["decision"], "expired", "{decided}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_unticked_at_consent_narrow_the_grant_and_show_in_the_token_response() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_basic").await;
    let (verifier, challenge) = pkce_pair();
    let reply = gh
        .authorize(&authorize_params(
            &agent,
            &challenge,
            "files:read files:write mail:send",
        ))
        .await;
    let (_, done) = gh
        .consent(
            &reply,
            |r| json!({ "approve": r["id"], "scopes": ["files:read", "mail:send"] }),
        )
        .await;
    let code = gh.expect_code(&done);
    let tokens = gh
        .exchange(&agent, &code, &verifier)
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        scope_set(tokens["scope"].as_str().unwrap_or_else(|| panic!(
            "RFC 6749 §5.1: scope is required when it differs from the request: {tokens}"
        ))),
        scope_set("files:read mail:send")
    );
    let info = gh
        .assert_active(&agent, str_field(&tokens, "access_token"), "narrowed token")
        .await;
    assert_eq!(
        scope_set(str_field(&info, "scope")),
        scope_set("files:read mail:send")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remembered_consent_skips_the_prompt_only_for_requests_it_covers() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;

    let reply = gh
        .authorize(&params_for(&agent, "files:read files:write"))
        .await;
    let (_, done) = gh
        .consent(&reply, |r| json!({ "approve": r["id"], "remember": "1h" }))
        .await;
    gh.expect_code(&done);

    // Fully covered (a subset of the remembered scopes): straight back with a code, no prompt.
    let (verifier, challenge) = pkce_pair();
    let reply = gh
        .authorize(&authorize_params(&agent, &challenge, "files:read"))
        .await;
    let location = reply.redirect();
    assert!(
        location.as_str().starts_with(REDIRECT),
        "a remembered consent must skip the prompt, but the browser went to {location}"
    );
    let code = gh.expect_code(&location);
    gh.exchange(&agent, &code, &verifier)
        .await
        .expect_status(StatusCode::OK);

    // Wider than what was remembered: the person is asked again.
    let reply = gh
        .authorize(&params_for(&agent, "files:read mail:send"))
        .await;
    let (requested, done) = gh.consent(&reply, deny).await;
    assert_eq!(requested["scopes"], json!(["files:read", "mail:send"]));
    gh.expect_redirect_error(&done, "access_denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_without_remember_is_asked_again_next_time() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let params = params_for(&agent, "files:read");
    let reply = gh.authorize(&params).await;
    gh.consent(&reply, approve).await;

    // The same request goes to the waiting page again (`consent` checks), and then to a code.
    gh.code_from(&params).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_redirect_uri_may_use_any_port_but_the_token_request_must_repeat_it() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let other_port = "http://127.0.0.1:51234/callback";
    let (verifier, challenge) = pkce_pair();
    let params = with(
        authorize_params(&agent, &challenge, "files:read"),
        "redirect_uri",
        other_port,
    );
    let reply = gh.authorize(&params).await;
    let (_, done) = gh.consent(&reply, approve).await;
    assert!(
        done.as_str().starts_with(other_port),
        "RFC 8252 §7.3: the code goes to the port the client asked for: {done}"
    );
    let code = query(&done).get("code").expect("code").clone();
    let res = gh
        .post_form(
            "/token",
            Some(&agent),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other_port),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    res.expect_status(StatusCode::OK);
}

// ---- resource indicators (RFC 8707) ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_bound_to_the_requested_resources_and_refresh_narrows_but_never_widens() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_post").await;
    let tokens = gh
        .tokens(&agent, "files:read files:write", &[API, MAIL])
        .await;
    let info = gh
        .assert_active(&agent, str_field(&tokens, "access_token"), "fresh token")
        .await;
    assert_eq!(
        aud_set(&info),
        BTreeSet::from([API.to_owned(), MAIL.to_owned()])
    );

    let rt = str_field(&tokens, "refresh_token").to_owned();
    gh.refresh(&agent, &rt, &[("resource", "https://other.example.com/")])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_target");
    gh.refresh(&agent, &rt, &[("scope", "files:read admin")])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");

    // A refused refresh leaves the refresh token usable: narrowing works afterwards.
    let narrowed = gh
        .refresh(&agent, &rt, &[("resource", API)])
        .await
        .expect_json(StatusCode::OK);
    let info = gh
        .assert_active(
            &agent,
            str_field(&narrowed, "access_token"),
            "narrowed token",
        )
        .await;
    assert_eq!(aud_set(&info), BTreeSet::from([API.to_owned()]));
    assert_eq!(
        scope_set(str_field(&info, "scope")),
        scope_set("files:read files:write")
    );

    let rt = str_field(&narrowed, "refresh_token").to_owned();
    let fewer = gh
        .refresh(&agent, &rt, &[("scope", "files:read")])
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(fewer["scope"], "files:read");
    let info = gh
        .assert_active(&agent, str_field(&fewer, "access_token"), "fewer scopes")
        .await;
    assert_eq!(str_field(&info, "scope"), "files:read");
}

// ---- negative tests: /authorize --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn authorize_without_pkce_redirects_with_invalid_request() {
    let gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_basic").await;
    let params = without(
        without(params_for(&agent, "files:read"), "code_challenge"),
        "code_challenge_method",
    );
    gh.assert_authorize_error(&params, "invalid_request").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_with_plain_pkce_redirects_with_invalid_request() {
    let gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let (verifier, challenge) = pkce_pair();
    // Explicitly plain, and implicitly plain (RFC 7636 §4.3: no method means plain).
    let explicit = with(
        with(
            authorize_params(&agent, &challenge, "files:read"),
            "code_challenge",
            &verifier,
        ),
        "code_challenge_method",
        "plain",
    );
    let implicit = without(
        authorize_params(&agent, &challenge, "files:read"),
        "code_challenge_method",
    );
    for params in [explicit, implicit] {
        gh.assert_authorize_error(&params, "invalid_request").await;
    }
}

/// `/authorize` with each of these redirect URIs (none registered) must answer the 400 error page
/// and never redirect.
async fn assert_error_page_for_redirect_uris(uris: &[&str]) {
    let gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    for uri in uris {
        let params = with(params_for(&agent, "files:read"), "redirect_uri", uri);
        gh.authorize(&params).await.assert_error_page();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_uri_mismatch_at_authorize_gets_a_400_page_and_no_redirect() {
    assert_error_page_for_redirect_uris(&[
        "http://127.0.0.1:7777/other",
        "http://127.0.0.1:7777/callback/",
        "http://127.0.0.1:7777/callback?x=1",
        "http://localhost:7777/callback",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_redirect_host_gets_a_400_page_and_no_redirect() {
    assert_error_page_for_redirect_uris(&[
        "https://attacker.example/callback",
        "http://attacker.example:7777/callback",
        "http://127.0.0.1.attacker.example:7777/callback",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_client_id_gets_a_400_page_and_no_redirect() {
    let gh = Gatehouse::start();
    let unknown = Client {
        id: "agt_doesnotexist".into(),
        secret: None,
        auth_method: "none".into(),
    };
    let params = params_for(&unknown, "files:read");
    gh.authorize(&params).await.assert_error_page();
    gh.authorize(&without(params, "client_id"))
        .await
        .assert_error_page();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_resource_redirects_with_invalid_target() {
    let gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    for resource in [
        "/relative/api",
        "https://api.example.com/#fragment",
        "not a uri",
    ] {
        let params = with(params_for(&agent, "files:read"), "resource", resource);
        gh.assert_authorize_error(&params, "invalid_target").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scope_syntax_is_invalid_scope_at_authorize_and_at_refresh() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    for scope in ["files:read \"quoted\"", "back\\slash", "caf\u{e9}"] {
        gh.assert_authorize_error(&params_for(&agent, scope), "invalid_scope")
            .await;
    }

    let tokens = gh.tokens(&agent, "files:read", &[]).await;
    gh.refresh(
        &agent,
        str_field(&tokens, "refresh_token"),
        &[("scope", "files:read \"x\"")],
    )
    .await
    .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
}

// ---- negative tests: /token --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_code_verifier_is_invalid_grant() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    let (code, _) = gh.approved_code(&agent, "files:read", &[]).await;
    let (someone_elses_verifier, _) = pkce_pair();
    gh.exchange(&agent, &code, &someone_elses_verifier)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn reusing_a_code_is_invalid_grant_and_revokes_the_tokens_it_issued() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_basic").await;
    let (code, verifier) = gh.approved_code(&agent, "files:read", &[]).await;
    let first = gh
        .exchange(&agent, &code, &verifier)
        .await
        .expect_json(StatusCode::OK);
    let access = str_field(&first, "access_token");
    gh.assert_active(&agent, access, "before the replay").await;

    gh.exchange(&agent, &code, &verifier)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    gh.assert_inactive(
        &agent,
        access,
        "the access token issued from a replayed code",
    )
    .await;
    gh.refresh(&agent, str_field(&first, "refresh_token"), &[])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_uri_mismatch_at_token_is_invalid_grant() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    for sent in [Some("http://127.0.0.1:7778/callback"), None] {
        let (code, verifier) = gh.approved_code(&agent, "files:read", &[]).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        if let Some(uri) = sent {
            form.push(("redirect_uri", uri));
        }
        gh.post_form("/token", Some(&agent), &form)
            .await
            .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_basic").await;
    let first = gh.tokens(&agent, "files:read", &[API]).await;
    let rt1 = str_field(&first, "refresh_token");
    let second = gh
        .refresh(&agent, rt1, &[])
        .await
        .expect_json(StatusCode::OK);
    let third = gh
        .refresh(&agent, str_field(&second, "refresh_token"), &[])
        .await
        .expect_json(StatusCode::OK);
    let (at3, rt3) = (
        str_field(&third, "access_token"),
        str_field(&third, "refresh_token"),
    );
    gh.assert_active(&agent, at3, "the newest access token")
        .await;

    gh.refresh(&agent, rt1, &[])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");

    for (name, token) in [
        ("first access token", str_field(&first, "access_token")),
        ("second access token", str_field(&second, "access_token")),
        ("newest access token", at3),
        ("newest refresh token", rt3),
    ] {
        gh.assert_inactive(&agent, token, &format!("after refresh reuse, the {name}"))
            .await;
    }
    gh.refresh(&agent, rt3, &[])
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let gh = Gatehouse::start();
    let public = gh.register_client("none").await;
    let confidential = gh.register_client("client_secret_basic").await;
    for grant in [
        "password",
        "client_credentials",
        "implicit",
        "urn:example:made-up",
    ] {
        for client in [&public, &confidential] {
            gh.post_form(
                "/token",
                Some(client),
                &[("grant_type", grant), ("username", "u"), ("password", "p")],
            )
            .await
            .assert_oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
        }
    }
}

// ---- introspection and revocation ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn introspection_needs_a_confidential_client_and_shows_only_its_own_tokens() {
    let mut gh = Gatehouse::start();
    let owner = gh.register_client("client_secret_basic").await;
    let other = gh.register_client("client_secret_post").await;
    let public = gh.register_client("none").await;
    let tokens = gh.tokens(&owner, "files:read", &[API]).await;
    let access = str_field(&tokens, "access_token");

    let info = gh.assert_active(&owner, access, "own token").await;
    assert_eq!(info["client_id"], owner.id.as_str());
    assert_eq!(info["scope"], "files:read");
    assert_eq!(aud_set(&info), BTreeSet::from([API.to_owned()]));
    let exp = info["exp"].as_i64().expect("exp in seconds");
    assert!(exp > now_secs() && exp <= now_secs() + 3600, "exp {exp}");

    assert_eq!(
        gh.introspect(&other, access).await,
        json!({ "active": false }),
        "another client's token must read exactly {{\"active\":false}}"
    );
    assert_eq!(
        gh.introspect(&owner, "gth_at_not-a-real-token").await,
        json!({ "active": false })
    );

    // No client, a public one, and a wrong secret.
    let wrong_secret = Client {
        secret: Some("not-the-secret".into()),
        ..owner.clone()
    };
    for caller in [None, Some(&public), Some(&wrong_secret)] {
        gh.post_form("/introspect", caller, &[("token", access)])
            .await
            .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }

    // RFC 7009 §2.2: revoking someone else's token answers 200 and changes nothing.
    gh.revoke(&other, access, None).await;
    gh.assert_active(&owner, access, "a token another client tried to revoke")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_refresh_token_revokes_every_token_of_its_grant() {
    let mut gh = Gatehouse::start();
    let agent = gh.register_client("client_secret_post").await;
    let first = gh.tokens(&agent, "files:read", &[]).await;
    let second = gh
        .refresh(&agent, str_field(&first, "refresh_token"), &[])
        .await
        .expect_json(StatusCode::OK);
    let rt = str_field(&second, "refresh_token");
    gh.revoke(&agent, rt, Some("refresh_token")).await;
    for token in [
        str_field(&first, "access_token"),
        str_field(&second, "access_token"),
        rt,
    ] {
        gh.assert_inactive(&agent, token, "after revoking the refresh token")
            .await;
    }
    // Revoking twice, or an unknown token, still answers 200 (RFC 7009 §2.2).
    for token in [rt, "gth_rt_unknown"] {
        gh.revoke(&agent, token, None).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_json_errors_are_never_cached() {
    let gh = Gatehouse::start();
    let agent = gh.register_client("none").await;
    gh.post_form(
        "/token",
        Some(&agent),
        &[("grant_type", "authorization_code")],
    )
    .await
    .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    gh.exchange(&agent, "gth_ac_bogus", &pkce_pair().0)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    gh.post_form("/token", None, &[("grant_type", "refresh_token")])
        .await
        .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    gh.register(json!({ "redirect_uris": [REDIRECT], "grant_types": ["password"] }))
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata");
    gh.post_form("/revoke", None, &[("token", "x")])
        .await
        .assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
}
