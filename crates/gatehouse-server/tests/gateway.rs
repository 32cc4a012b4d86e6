//! The gateway router over an in-memory upstream table and a fake upstream API on loopback.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::approvals::Decision;
use gatehouse_core::authority::{AuthorizeOutcome, AuthorizeParams, ConsentProgress, TokenParams};
use gatehouse_core::oauth::ClientCredentials;
use gatehouse_core::oauth::registration::RegistrationRequest;
use gatehouse_core::{Authority, AuthorityConfig, Store, StoreOptions, SystemClock};
use gatehouse_server::gateway::{
    Upstream, UpstreamError, UpstreamFuture, Upstreams, gateway_router,
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const PORT: u16 = 5000;
const ISS: &str = "http://127.0.0.1:5000";
const UPSTREAM_SECRET: &str = "upstream-secret-value-123";

#[derive(Debug)]
struct Table(String, Mutex<bool>);

impl Upstreams for Table {
    fn resolve<'a>(&'a self, name: &'a str) -> UpstreamFuture<'a> {
        Box::pin(async move {
            if name != "api" {
                return Err(UpstreamError::Unknown);
            }
            if *self.1.lock().unwrap() {
                return Err(UpstreamError::Sealed("no secret service".into()));
            }
            Ok(Upstream {
                base_url: self.0.clone(),
                header_name: "x-api-key".into(),
                header_value: Arc::new(gatehouse_core::secret::Secret::from_presented(
                    UPSTREAM_SECRET,
                )),
            })
        })
    }
}

async fn fake_upstream(seen: Arc<Mutex<Vec<HeaderMap>>>) -> String {
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(req.headers().clone());
            let n = req.into_body().collect().await.unwrap().to_bytes().len();
            format!("upstream got {n} bytes")
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/v1")
}

async fn token(a: &Authority, scope: &str, resource: &str) -> String {
    let r = a
        .register(RegistrationRequest {
            redirect_uris: Some(vec!["http://127.0.0.1:9/cb".into()]),
            token_endpoint_auth_method: Some("none".into()),
            client_name: Some("agent".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let verifier = "v".repeat(50);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let out = a
        .authorize(AuthorizeParams {
            client_id: Some(r.client_id.clone()),
            redirect_uri: Some("http://127.0.0.1:9/cb".into()),
            response_type: Some("code".into()),
            scope: Some(scope.into()),
            code_challenge: Some(challenge),
            code_challenge_method: Some("S256".into()),
            resource: vec![resource.into()],
            ..Default::default()
        })
        .await;
    let AuthorizeOutcome::AwaitConsent { approval_id } = out else {
        panic!("{out:?}")
    };
    a.broker()
        .decide(&approval_id, Decision::approve(), "test")
        .await
        .unwrap();
    let ConsentProgress::Redirect(url) = a.consent_progress(&approval_id).await else {
        panic!()
    };
    let code = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = a
        .token(
            TokenParams {
                grant_type: Some("authorization_code".into()),
                code: Some(code),
                redirect_uri: Some("http://127.0.0.1:9/cb".into()),
                code_verifier: Some(verifier),
                ..Default::default()
            },
            ClientCredentials::None {
                client_id: r.client_id,
            },
        )
        .await
        .unwrap();
    t.access_token.expose().to_owned()
}

async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    tok: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:5000");
    if let Some(t) = tok {
        b = b
            .header("authorization", format!("Bearer {t}"))
            .header("cookie", "a=b");
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (p, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        p.status,
        p.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn gateway_allow_scope_audience_ask_sealed_and_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock);
    let store = Store::open(dir.path(), StoreOptions::default(), clock.clone()).unwrap();
    let mut config = AuthorityConfig::new(ISS);
    config.approval_ttl = std::time::Duration::from_millis(800);
    let a = Arc::new(Authority::new(store, clock, config));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let table = Arc::new(Table(fake_upstream(seen.clone()).await, Mutex::new(false)));
    let app = gateway_router(a.clone(), PORT, table.clone());

    // Discovery: 401 names the metadata, which names the issuer and the scopes.
    let (st, h, _) = send(&app, "GET", "/gateway/api/x", None, vec![]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let www = h["www-authenticate"].to_str().unwrap();
    assert_eq!(
        www,
        format!(
            r#"Bearer resource_metadata="{ISS}/.well-known/oauth-protected-resource/gateway/api""#
        )
    );
    let (st, _, body) = send(
        &app,
        "GET",
        "/.well-known/oauth-protected-resource/gateway/api",
        None,
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["resource"], format!("{ISS}/gateway/api"));
    assert_eq!(m["authorization_servers"], serde_json::json!([ISS]));
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["api:read", "api:write"])
    );

    let read = token(&a, "api:read", &format!("{ISS}/gateway/api")).await;
    let write = token(&a, "api:read api:write", &format!("{ISS}/gateway/api")).await;
    let other = token(&a, "api:read", &format!("{ISS}/gateway/mail")).await;

    // Allow: the upstream sees its credential, never the agent's token or cookie.
    let (st, h, body) = send(&app, "GET", "/gateway/api/items?q=1", Some(&read), vec![]).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body, "upstream got 0 bytes");
    assert!(!format!("{h:?}{body}").contains(UPSTREAM_SECRET));
    {
        let seen = seen.lock().unwrap();
        let up = seen.last().unwrap();
        assert_eq!(up["x-api-key"], UPSTREAM_SECRET);
        assert!(up.get("authorization").is_none() && up.get("cookie").is_none());
        assert!(!format!("{up:?}").contains(&read));
    }

    // Wrong audience and missing scope.
    let (st, h, _) = send(&app, "GET", "/gateway/api/x", Some(&other), vec![]).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let (st, h, body) = send(&app, "POST", "/gateway/api/x", Some(&read), vec![]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(body.contains("insufficient_scope"));
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"scope="api:write""#)
    );

    // A write asks: approved forwards, denied and unanswered are 403 access_denied.
    let mut notices = a.broker().subscribe();
    let approver = {
        let a = a.clone();
        tokio::spawn(async move {
            for d in [Decision::approve(), Decision::deny()] {
                loop {
                    if let Ok(gatehouse_core::approvals::ApprovalNotice::Requested(v)) =
                        notices.recv().await
                    {
                        a.broker().decide(&v.id, d, "test").await.unwrap();
                        break;
                    }
                }
            }
        })
    };
    let big = vec![b'x'; 3 * 1024 * 1024];
    let (st, _, body) = send(&app, "POST", "/gateway/api/x", Some(&write), big).await;
    assert_eq!(
        (st, body.as_str()),
        (StatusCode::OK, "upstream got 3145728 bytes")
    );
    let (st, _, body) = send(&app, "DELETE", "/gateway/api/x", Some(&write), vec![]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        body.contains("access_denied") && body.contains("denied"),
        "{body}"
    );
    approver.await.unwrap();
    let (st, _, body) = send(&app, "PUT", "/gateway/api/x", Some(&write), vec![]).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(body.contains("in time"), "{body}");

    // Sealed vault: 503 with a clear error; unknown connection: 404.
    *table.1.lock().unwrap() = true;
    let (st, _, body) = send(&app, "GET", "/gateway/api/x", Some(&read), vec![]).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("vault_sealed"), "{body}");
    let nope = token(&a, "nope:read", &format!("{ISS}/gateway/nope")).await;
    let (st, _, _) = send(&app, "GET", "/gateway/nope/x", Some(&nope), vec![]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_server_router_mounts_the_gateway_over_the_vault() {
    use gatehouse_core::secret::Secret;
    use gatehouse_core::vault::{CredentialStore, MemoryStore, Vault};
    use gatehouse_server::gateway::VaultUpstreams;

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SystemClock);
    let store = Store::open(dir.path(), StoreOptions::default(), clock.clone()).unwrap();
    let a = Arc::new(Authority::new(
        store.clone(),
        clock,
        AuthorityConfig::new(ISS),
    ));
    let keyring = Arc::new(MemoryStore::new());
    let vault = Vault::new(store, keyring.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fake_upstream(seen.clone()).await;
    vault
        .add_api_key(
            "api",
            &base,
            "X-API-Key",
            "",
            Secret::from_presented(UPSTREAM_SECRET),
        )
        .await
        .unwrap();
    // No credential cache, so the keyring's failures below show on the very next call (the
    // cache has its own tests in the gateway module).
    let upstreams = VaultUpstreams::with_keyring_recheck(vault.clone(), Duration::ZERO);
    let mcp = gatehouse_server::mcp::McpGateway::new(a.clone(), vault.clone());
    let app = gatehouse_server::router(a.clone(), PORT, Arc::new(upstreams), mcp);

    // The OAuth endpoints are still there, next to the gateway.
    let (st, _, _) = send(
        &app,
        "GET",
        "/.well-known/oauth-authorization-server",
        None,
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = send(
        &app,
        "GET",
        "/.well-known/oauth-protected-resource/gateway/api",
        None,
        vec![],
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    // Allowed: the vault's key goes upstream and the connection's last use is recorded.
    let read = token(&a, "api:read", &format!("{ISS}/gateway/api")).await;
    assert!(
        vault
            .get("api")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_none()
    );
    let (st, h, body) = send(&app, "GET", "/gateway/api/items", Some(&read), vec![]).await;
    assert_eq!(
        (st, body.as_str()),
        (StatusCode::OK, "upstream got 0 bytes")
    );
    assert!(!format!("{h:?}").contains(UPSTREAM_SECRET));
    assert_eq!(
        seen.lock().unwrap().last().unwrap()["x-api-key"],
        UPSTREAM_SECRET
    );
    assert!(
        vault
            .get("api")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );

    // Unknown: 404. A keyring entry gone: 503 credential_unavailable. Sealed: 503 vault_sealed.
    let nope = token(&a, "nope:read", &format!("{ISS}/gateway/nope")).await;
    let (st, _, _) = send(&app, "GET", "/gateway/nope/x", Some(&nope), vec![]).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    keyring.delete("connection:api").unwrap();
    let (st, _, body) = send(&app, "GET", "/gateway/api/x", Some(&read), vec![]).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("credential_unavailable") && body.contains("api"),
        "{body}"
    );
    keyring.set_sealed(true);
    let (st, _, body) = send(&app, "GET", "/gateway/api/x", Some(&read), vec![]).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("vault_sealed") && body.contains("unlock your keyring"),
        "{body}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}
