//! The credential-injecting gateway through the real binary: connections in the vault (the OS
//! keyring of the headless session `scripts/test.sh` starts), agents consented with
//! `resource={issuer}/gateway/NAME`, and a fake upstream API on loopback that records what it
//! receives. Allow, ask approved, ask denied, wrong audience, missing scope, a 20 MB body both
//! ways, and a sealed vault.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gatehouse_e2e::vault::{add, assert_not_in_data_dir, keyring_session, random_hex, text};
use gatehouse_e2e::{Server, flow, pkce_pair, run_cli};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the fake upstream received: method, path and query, headers.
type Seen = Arc<Mutex<Vec<(Method, String, HeaderMap)>>>;

/// A fake upstream API on 127.0.0.1:0: `/v1/echo` streams the request body back, anything else
/// answers `{"method","path","bytes"}`. Returns its base URL (`http://127.0.0.1:PORT/v1`).
async fn fake_upstream(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default();
                        if let Ok(mut s) = seen.lock() {
                            s.push((req.method().clone(), path.clone(), req.headers().clone()));
                        }
                        let method = req.method().to_string();
                        let body: BoxBody<Bytes, hyper::Error> = if path == "/v1/echo" {
                            req.into_body().boxed()
                        } else {
                            let n = req.into_body().collect().await?.to_bytes().len();
                            let v = json!({ "method": method, "path": path, "bytes": n });
                            Full::new(Bytes::from(v.to_string()))
                                .map_err(|never| match never {})
                                .boxed()
                        };
                        Ok::<_, hyper::Error>(Response::new(body))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// `gatehouse connections add NAME --url URL --api-key --header X-Upstream-Key`, the secret on stdin.
fn add_connection(dir: &Path, name: &str, url: &str, secret: &str) {
    let args = [
        name,
        "--url",
        url,
        "--api-key",
        "--header",
        "X-Upstream-Key",
    ];
    let out = add(dir, &args, secret, &[]);
    assert!(out.status.success(), "{}", text(&out));
}

fn remove_connection(dir: &Path, name: &str) {
    let out = run_cli(dir, &["connections", "rm", name]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A data dir with a database and a connection `name` to `url` holding `secret`.
fn data_dir_with(name: &str, url: &str, secret: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    Server::start(dir.path(), &[]).stop();
    add_connection(dir.path(), name, url, secret);
    dir
}

/// Registers an agent and gets it an access token for `resource` and `scope` through a consent
/// the jsonl approver approves.
async fn agent_token(
    server: &mut Server,
    http: &reqwest::Client,
    resource: &str,
    scope: &str,
) -> String {
    let client = flow::register(http, &server.issuer, true).await;
    let (verifier, challenge) = pkce_pair();
    let res = flow::authorize_request(http, &server.issuer, &client, &challenge, "st-gw")
        .query(&[("resource", resource), ("scope", scope)])
        .send()
        .await
        .expect("GET /authorize");
    let waiting = flow::location(&res);
    let id = flow::approval_id(&waiting);
    let req = server.expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
    let shown: Vec<&str> = req["scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(shown, scope.split(' ').collect::<Vec<_>>(), "{req}");
    server.decide(json!({ "approve": id }));
    server.expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
    let res = http.get(&waiting).send().await.expect("GET waiting page");
    let to = flow::location(&res);
    let code = flow::query_param(&to, "code").unwrap_or_else(|| panic!("no code in {to}"));
    let t =
        flow::tokens(flow::exchange(http, &server.issuer, &client, &code, &verifier).await).await;
    t["access_token"].as_str().expect("access_token").to_owned()
}

/// Status, headers and body (as text) of an answer, read whole.
async fn read(res: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.expect("body");
    (status, headers, body)
}

/// Panics if any header or the body of an answer holds `secret`.
fn assert_secret_absent(headers: &reqwest::header::HeaderMap, body: &str, secret: &str) {
    assert!(!format!("{headers:?}").contains(secret), "{headers:?}");
    assert!(!body.contains(secret), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_injects_the_vault_credential_and_asks_for_writes() {
    if !keyring_session() {
        return;
    }
    let seen: Seen = Arc::default();
    let base = fake_upstream(seen.clone()).await;
    let name = format!("gw-{}", random_hex());
    let secret = format!("sk_upstream_{}", random_hex());
    let dir = data_dir_with(&name, &base, &secret);
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let iss = server.issuer.clone();
    let resource = format!("{iss}/gateway/{name}");
    let meta = format!("{iss}/.well-known/oauth-protected-resource/gateway/{name}");
    let gw = |path: &str| format!("{iss}/gateway/{name}{path}");

    // Discovery: no token is a 401 naming the RFC 9728 metadata, which names the issuer.
    let (st, h, body) = read(http.get(gw("/items")).send().await.expect("GET")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let www = h["www-authenticate"].to_str().expect("ascii");
    assert!(
        www.contains(&format!(r#"resource_metadata="{meta}""#)),
        "{www}"
    );
    let (st, _, body) = read(http.get(&meta).send().await.expect("GET metadata")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let m: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(m["resource"], resource.as_str());
    assert_eq!(m["authorization_servers"], json!([iss]));

    let rw = agent_token(
        &mut server,
        &http,
        &resource,
        &format!("{name}:read {name}:write"),
    )
    .await;

    // Allow (a read): the upstream sees its key, never the agent's token or cookie; the key never
    // comes back to the agent.
    let res = http
        .get(gw("/items?q=1"))
        .bearer_auth(&rw)
        .header("cookie", "session=agent")
        .send()
        .await
        .expect("GET through the gateway");
    let (st, h, body) = read(res).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("upstream json");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/v1/items?q=1");
    assert_secret_absent(&h, &body, &secret);
    {
        let seen = seen.lock().expect("seen");
        let (_, _, up) = seen.last().expect("the upstream got the read");
        assert_eq!(up["x-upstream-key"], secret.as_str());
        assert!(up.get("authorization").is_none(), "{up:?}");
        assert!(up.get("cookie").is_none(), "{up:?}");
        assert!(
            !format!("{up:?}").contains(&rw),
            "the agent's token reached the upstream"
        );
    }

    // A write asks: approved on the jsonl channel, then forwarded.
    let call = tokio::spawn(
        http.post(gw("/items"))
            .bearer_auth(&rw)
            .body("{\"title\":\"hello\"}")
            .send(),
    );
    let ask = server.expect_event("approval_requested");
    let asked = ask.to_string();
    assert!(asked.contains("POST"), "{asked}");
    assert!(asked.contains(&format!("{base}/items")), "{asked}");
    server.decide(json!({ "approve": ask["id"] }));
    let (st, h, body) = read(call.await.expect("join").expect("POST")).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("upstream json");
    assert_eq!(
        (v["method"].as_str(), v["bytes"].as_u64()),
        (Some("POST"), Some(17))
    );
    assert_secret_absent(&h, &body, &secret);

    // DELETE asks (with a warning): denied is a 403 and the upstream never sees it.
    let call = tokio::spawn(http.delete(gw("/items/1")).bearer_auth(&rw).send());
    let ask = server.expect_event("approval_requested");
    assert!(ask.to_string().contains("DELETE"), "{ask}");
    server.decide(json!({ "deny": ask["id"] }));
    let (st, _, body) = read(call.await.expect("join").expect("DELETE")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("access_denied"), "{body}");
    assert!(
        !seen
            .lock()
            .expect("seen")
            .iter()
            .any(|(m, _, _)| m == Method::DELETE),
        "a denied DELETE reached the upstream"
    );

    // Wrong audience: 401 invalid_token with the metadata; missing write scope: 403.
    let other = agent_token(
        &mut server,
        &http,
        &format!("{iss}/gateway/other-{}", random_hex()),
        &format!("{name}:read"),
    )
    .await;
    let (st, h, body) = read(
        http.get(gw("/items"))
            .bearer_auth(&other)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let www = h["www-authenticate"].to_str().expect("ascii");
    assert!(
        www.contains(&format!(r#"resource_metadata="{meta}""#)),
        "{www}"
    );
    assert!(www.contains(r#"error="invalid_token""#), "{www}");
    let read_only = agent_token(&mut server, &http, &resource, &format!("{name}:read")).await;
    let before = seen.lock().expect("seen").len();
    let (st, h, body) = read(
        http.post(gw("/items"))
            .bearer_auth(&read_only)
            .body("x")
            .send()
            .await
            .expect("POST"),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("insufficient_scope"), "{body}");
    let www = h["www-authenticate"].to_str().expect("ascii");
    assert!(www.contains(&format!(r#"scope="{name}:write""#)), "{www}");
    assert_eq!(seen.lock().expect("seen").len(), before);

    // 20 MB up and back through the gateway (well past the 64 KiB limit of the OAuth endpoints).
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let call = tokio::spawn(
        http.post(gw("/echo"))
            .bearer_auth(&rw)
            .body(big.clone())
            .send(),
    );
    let ask = server.expect_event("approval_requested");
    server.decide(json!({ "approve": ask["id"] }));
    let res = call.await.expect("join").expect("POST 20 MB");
    assert_eq!(res.status(), StatusCode::OK);
    let back = res.bytes().await.expect("20 MB back");
    assert_eq!(back.len(), big.len());
    assert!(back.as_ref() == big.as_slice(), "the echoed body differs");

    let (status, output) = server.stop_and_collect();
    assert!(status.success());
    assert!(
        !output.text().contains(&secret),
        "the secret is in the server's output"
    );

    // Every call is audited without bodies or secrets; the connection's last use is recorded.
    let out = run_cli(dir.path(), &["log", "--json", "--limit", "100"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    let calls: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "gateway.call")
        .collect();
    assert!(calls.len() >= 7, "{log}");
    assert!(!log.contains(&secret) && !log.contains("hello"), "{log}");
    let out = run_cli(dir.path(), &["connections", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(listed[0]["last_used_at"].is_number(), "{listed}");
    let out = run_cli(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_not_in_data_dir(dir.path(), &secret);
    remove_connection(dir.path(), &name);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_vault_answers_503() {
    if !keyring_session() {
        return;
    }
    let seen: Seen = Arc::default();
    let base = fake_upstream(seen.clone()).await;
    let name = format!("sl-{}", random_hex());
    let secret = format!("sk_upstream_{}", random_hex());
    let dir = data_dir_with(&name, &base, &secret);
    // The connection exists, but this server cannot reach any Secret Service.
    let mut server = Server::start_with_env(
        dir.path(),
        &[],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
    );
    let http = flow::http();
    let resource = format!("{}/gateway/{name}", server.issuer);
    let token = agent_token(&mut server, &http, &resource, &format!("{name}:read")).await;
    let (st, h, body) = read(
        http.get(format!("{resource}/items"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"], "vault_sealed", "{body}");
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("sealed")),
        "{body}"
    );
    assert_secret_absent(&h, &body, &secret);
    assert!(
        seen.lock().expect("seen").is_empty(),
        "a sealed call reached the upstream"
    );
    assert!(server.stop().success());
    remove_connection(dir.path(), &name);
}
