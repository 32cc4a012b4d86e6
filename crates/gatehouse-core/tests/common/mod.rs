//! Helpers shared by the core integration tests: a store on a temp dir with a manual clock, raw
//! SQLite connections to the same file (playing "another process"), and an OAuth client that
//! drives the authority through registration, consent and code exchange.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::approvals::{Decision, Remember};
use gatehouse_core::audit::{EventKind, NewEvent, Outcome};
use gatehouse_core::authority::{
    AuthorizeOutcome, AuthorizeParams, ConsentProgress, TokenParams, TokenResponse,
};
use gatehouse_core::clock::ManualClock;
use gatehouse_core::oauth::registration::RegistrationRequest;
use gatehouse_core::oauth::{ClientCredentials, OAuthError};
use gatehouse_core::store::DB_FILE;
use gatehouse_core::{Authority, AuthorityConfig, Store, StoreOptions};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// 2026-01-01T00:00:00Z: a fixed start so every run sees the same times.
pub const T0: i64 = 1_767_225_600_000;
pub const REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// A store and an authority on a fresh temp dir, both driven by one manual clock.
pub struct Env {
    pub dir: TempDir,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    pub authority: Authority,
}

impl Env {
    pub fn new() -> Self {
        Self::with_options(StoreOptions::default())
    }

    pub fn with_options(options: StoreOptions) -> Self {
        let dir = TempDir::new().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let store = Store::open(dir.path(), options, clock.clone()).unwrap();
        let authority = Authority::new(
            store.clone(),
            clock.clone(),
            AuthorityConfig::new("http://127.0.0.1:1"),
        );
        Env {
            dir,
            clock,
            store,
            authority,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// A second connection to the database file, as another process would hold it.
    pub fn raw(&self) -> rusqlite::Connection {
        raw_connection(self.dir.path())
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.raw().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub fn raw_connection(data_dir: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(data_dir.join(DB_FILE)).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// An audit event with a marker in its detail, for tests that write through `Store::write`.
pub fn marker_event(n: u64) -> NewEvent {
    NewEvent::new(
        EventKind::RequestRejected,
        Outcome::Rejected,
        Some("agt_test"),
        serde_json::json!({ "n": n }),
    )
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = format!("{}-verifier-0123456789abcdefghijklmnop", rand_suffix());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("v{:08}", N.fetch_add(1, Ordering::Relaxed))
}

/// A registered confidential client (client_secret_basic, code + refresh).
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub secret: String,
}

impl Client {
    pub fn creds(&self) -> ClientCredentials {
        ClientCredentials::Basic {
            client_id: self.client_id.clone(),
            secret: self.secret.clone(),
        }
    }
}

pub fn registration(name: &str) -> RegistrationRequest {
    RegistrationRequest {
        redirect_uris: Some(vec![REDIRECT.into()]),
        token_endpoint_auth_method: Some("client_secret_basic".into()),
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        client_name: Some(name.into()),
        ..Default::default()
    }
}

pub async fn register(a: &Authority, name: &str) -> Client {
    let r = a.register(registration(name)).await.unwrap();
    Client {
        client_id: r.client_id,
        secret: r.client_secret.unwrap().expose().to_owned(),
    }
}

/// An authorization request in progress: what the client keeps between `/authorize` and `/token`.
#[derive(Debug)]
pub struct Pending {
    pub verifier: String,
    pub outcome: AuthorizeOutcome,
}

pub async fn authorize(a: &Authority, c: &Client, scope: &str) -> Pending {
    let (verifier, challenge) = pkce_pair();
    let outcome = a
        .authorize(AuthorizeParams {
            client_id: Some(c.client_id.clone()),
            redirect_uri: Some(REDIRECT.into()),
            response_type: Some("code".into()),
            scope: Some(scope.into()),
            state: Some("xyz".into()),
            code_challenge: Some(challenge),
            code_challenge_method: Some("S256".into()),
            ..Default::default()
        })
        .await;
    Pending { verifier, outcome }
}

pub fn approval_id(p: &Pending) -> String {
    match &p.outcome {
        AuthorizeOutcome::AwaitConsent { approval_id } => approval_id.clone(),
        other => panic!("expected a consent prompt, got {other:?}"),
    }
}

/// The query parameters of a redirect to the client.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    assert!(url.starts_with(REDIRECT), "redirect to {url}");
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn redirect_of(progress: ConsentProgress) -> std::collections::HashMap<String, String> {
    match progress {
        ConsentProgress::Redirect(url) => query(&url),
        other => panic!("expected a redirect to the client, got {other:?}"),
    }
}

pub async fn exchange(
    a: &Authority,
    c: &Client,
    code: &str,
    verifier: &str,
) -> Result<TokenResponse, OAuthError> {
    a.token(
        TokenParams {
            grant_type: Some("authorization_code".into()),
            code: Some(code.into()),
            redirect_uri: Some(REDIRECT.into()),
            code_verifier: Some(verifier.into()),
            ..Default::default()
        },
        c.creds(),
    )
    .await
}

pub async fn refresh(
    a: &Authority,
    c: &Client,
    refresh_token: &str,
) -> Result<TokenResponse, OAuthError> {
    a.token(
        TokenParams {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(refresh_token.into()),
            ..Default::default()
        },
        c.creds(),
    )
    .await
}

/// Runs a whole consent: authorize, approve with `decision`, collect the code, exchange it.
pub async fn consent_and_exchange(
    a: &Authority,
    c: &Client,
    scope: &str,
    decision: Decision,
) -> TokenResponse {
    let p = authorize(a, c, scope).await;
    let id = approval_id(&p);
    a.broker().decide(&id, decision, "test").await.unwrap();
    let q = redirect_of(a.consent_progress(&id).await);
    exchange(a, c, &q["code"], &p.verifier).await.unwrap()
}

pub fn approve_remembering(remember: Remember) -> Decision {
    Decision {
        remember,
        ..Decision::approve()
    }
}

pub async fn is_active(a: &Authority, c: &Client, token: &str) -> bool {
    a.introspect(Some(token.into()), c.creds())
        .await
        .unwrap()
        .active
}
