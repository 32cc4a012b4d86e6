//! The credential-injecting gateway through the real binary: connections in the vault (the OS
//! keyring of the headless session `scripts/test.sh` starts), agents consented with
//! `resource={issuer}/gateway/NAME`, and a fake upstream API on loopback that records what it
//! receives. Allow, ask approved, ask denied, ask timed out, wrong audience, missing scope, a
//! 20 MB body both ways, the body summary in the prompt, exact byte counts of chunked bodies in
//! the audit, an abandoned download audited as aborted, and a sealed vault.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use gatehouse_e2e::vault::{add, assert_not_in_data_dir, keyring_session, random_hex, text};
use gatehouse_e2e::{Server, flow, pkce_pair, run_cli};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the fake upstream received: method, path and query, headers.
type Seen = Arc<Mutex<Vec<(Method, String, HeaderMap)>>>;

/// A body of `left` bytes sent in 8 KiB frames with no declared size, so HTTP/1.1 sends it with
/// `Transfer-Encoding: chunked`.
struct Chunks {
    left: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(8192);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'c'; n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A fake upstream API on 127.0.0.1:0: `/v1/echo` streams the request body back, `/v1/chunks/N`
/// answers N bytes chunked (no Content-Length), anything else answers `{"method","path","bytes"}`.
/// Returns its base URL (`http://127.0.0.1:PORT/v1`).
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
                        let chunks = path
                            .strip_prefix("/v1/chunks/")
                            .and_then(|n| n.parse::<usize>().ok());
                        let body: BoxBody<Bytes, hyper::Error> = if path == "/v1/echo" {
                            req.into_body().boxed()
                        } else if let Some(left) = chunks {
                            Chunks { left }.boxed()
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

/// Every `gateway.call` event of a data dir, oldest first.
fn gateway_calls(dir: &Path) -> Vec<Value> {
    let out = run_cli(dir, &["log", "--json", "--limit", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut calls: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "gateway.call")
        .collect();
    calls.sort_by_key(|v| v["id"].as_i64());
    calls
}

/// The detail of the last `gateway.call` event for `path`.
fn last_call(dir: &Path, path: &str) -> Value {
    gateway_calls(dir)
        .into_iter()
        .rev()
        .map(|v| v["detail"].clone())
        .find(|d| d["path"] == path)
        .unwrap_or_else(|| panic!("no gateway.call for {path}"))
}

/// Sends one request through the gateway with a plain hyper connection, the body chunked (no
/// Content-Length); returns the status and the whole response body.
async fn send_chunked(url: &str, token: &str, method: Method, body: Chunks) -> (u16, Bytes) {
    let uri: hyper::Uri = url.parse().expect("uri");
    let authority = uri.authority().expect("authority").to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(uri.path_and_query().expect("path").as_str())
        .header("host", &authority)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request");
    let res = sender.send_request(req).await.expect("send");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_ask_times_out_to_a_403_and_never_reaches_the_upstream() {
    if !keyring_session() {
        return;
    }
    let seen: Seen = Arc::default();
    let base = fake_upstream(seen.clone()).await;
    let name = format!("to-{}", random_hex());
    let secret = format!("sk_upstream_{}", random_hex());
    let dir = data_dir_with(&name, &base, &secret);
    let mut server = Server::start(dir.path(), &["--approval-timeout", "1"]);
    let http = flow::http();
    let resource = format!("{}/gateway/{name}", server.issuer);
    let token = agent_token(
        &mut server,
        &http,
        &resource,
        &format!("{name}:read {name}:write"),
    )
    .await;

    // Nobody answers the jsonl approver: the call is held, then refused like a denial.
    let started = std::time::Instant::now();
    let (st, h, body) = read(
        http.put(format!("{resource}/items/7"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(r#"{"title":"late"}"#)
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "answered after {waited:?}, before the approval timed out"
    );
    assert!(
        h["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/json")),
        "{h:?}"
    );
    let v: Value = serde_json::from_str(&body).expect("an OAuth-style JSON error");
    assert_eq!(v["error"], "access_denied", "{body}");
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("in time")),
        "{body}"
    );
    let ask = server.expect_event("approval_requested");
    server.expect_event_matching("approval_decided", |d| {
        d["id"] == ask["id"] && d["decision"] == "expired"
    });
    assert!(
        seen.lock().expect("seen").is_empty(),
        "a call nobody approved reached the upstream"
    );
    let call = last_call(dir.path(), "/items/7");
    assert_eq!(call["decision"], "expired", "{call}");
    assert_eq!(call["status"], 403, "{call}");
    assert_eq!(call["method"], "PUT", "{call}");
    assert!(call["bytes_in"].is_null(), "nothing went upstream: {call}");
    assert!(server.stop().success());
    remove_connection(dir.path(), &name);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_summarizes_the_body_and_the_audit_counts_chunked_bytes() {
    if !keyring_session() {
        return;
    }
    let seen: Seen = Arc::default();
    let base = fake_upstream(seen.clone()).await;
    let name = format!("bs-{}", random_hex());
    let secret = format!("sk_upstream_{}", random_hex());
    let dir = data_dir_with(&name, &base, &secret);
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let resource = format!("{}/gateway/{name}", server.issuer);
    let token = agent_token(
        &mut server,
        &http,
        &resource,
        &format!("{name}:read {name}:write"),
    )
    .await;

    // A JSON write: the prompt shows its type, exact size and a preview without the password;
    // the upstream still gets the body byte for byte.
    let password = format!("pw-{}", random_hex());
    let long = "L".repeat(5000);
    let sent =
        json!({ "title": "quarterly report", "password": password, "notes": long }).to_string();
    let call = tokio::spawn(
        http.post(format!("{resource}/echo"))
            .bearer_auth(&token)
            .header("content-type", "application/json; charset=utf-8")
            .body(sent.clone())
            .send(),
    );
    let ask = server.expect_event("approval_requested");
    let shown = ask["authorization_details"][0]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no body summary in {ask}"))
        .to_owned();
    assert!(
        shown.starts_with(&format!("application/json, {} bytes: {{", sent.len())),
        "{shown}"
    );
    assert!(shown.contains("quarterly report"), "{shown}");
    assert!(shown.contains(r#""password":"[redacted]""#), "{shown}");
    assert!(!ask.to_string().contains(&password), "{ask}");
    assert!(shown.chars().count() < 200, "{shown}");
    assert!(
        ask["summary"].as_array().is_some_and(|lines| lines
            .iter()
            .any(|l| l.as_str() == Some(&format!("Body: {shown}")))),
        "{ask}"
    );
    server.decide(json!({ "approve": ask["id"] }));
    let (st, _, body) = read(call.await.expect("join").expect("POST")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, sent, "the body changed on its way upstream and back");
    let c = last_call(dir.path(), "/echo");
    assert_eq!(
        (c["bytes_in"].as_u64(), c["bytes_out"].as_u64()),
        (Some(sent.len() as u64), Some(sent.len() as u64)),
        "{c}"
    );
    assert!(!c.to_string().contains(&password), "{c}");

    // A chunked upload (no Content-Length), echoed back chunked: the prompt says the size is
    // unknown; the audit has the exact counts both ways.
    let up = 300_001;
    let url = format!("{resource}/echo");
    let t = token.clone();
    let call =
        tokio::spawn(
            async move { send_chunked(&url, &t, Method::POST, Chunks { left: up }).await },
        );
    let ask = server.expect_event("approval_requested");
    let shown = ask["authorization_details"][0]["body"]
        .as_str()
        .unwrap_or("");
    assert_eq!(
        shown, "application/octet-stream, size unknown (streamed)",
        "{ask}"
    );
    server.decide(json!({ "approve": ask["id"] }));
    let (st, back) = call.await.expect("join");
    assert_eq!(st, 200);
    assert_eq!(back.len(), up);
    {
        let seen = seen.lock().expect("seen");
        let (_, _, h) = seen.last().expect("the upstream got the upload");
        assert_eq!(h["transfer-encoding"], "chunked", "{h:?}");
        assert!(h.get("content-length").is_none(), "{h:?}");
    }
    let c = last_call(dir.path(), "/echo");
    assert_eq!(c["decision"], "approved", "{c}");
    assert_eq!(c["transfer"], "complete", "{c}");
    assert_eq!(
        (c["bytes_in"].as_u64(), c["bytes_out"].as_u64()),
        (Some(up as u64), Some(up as u64)),
        "{c}"
    );

    // A chunked download (a read, allowed without asking).
    let down = 1_234_567;
    let res = http
        .get(format!("{resource}/chunks/{down}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET chunks");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers().get("content-length").is_none(),
        "{:?}",
        res.headers()
    );
    assert_eq!(res.bytes().await.expect("download").len(), down);
    let c = last_call(dir.path(), &format!("/chunks/{down}"));
    assert_eq!(c["decision"], "allow", "{c}");
    assert_eq!(c["transfer"], "complete", "{c}");
    assert_eq!(
        (c["bytes_in"].as_u64(), c["bytes_out"].as_u64()),
        (Some(0), Some(down as u64)),
        "{c}"
    );

    let (status, output) = server.stop_and_collect();
    assert!(status.success());
    assert!(!output.text().contains(&secret));
    let out = run_cli(dir.path(), &["log", "--json", "--limit", "1000"]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        !log.contains(&password) && !log.contains("quarterly"),
        "{log}"
    );
    assert_not_in_data_dir(dir.path(), &secret);
    remove_connection(dir.path(), &name);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_the_agent_abandons_is_audited_as_aborted() {
    if !keyring_session() {
        return;
    }
    let seen: Seen = Arc::default();
    let base = fake_upstream(seen.clone()).await;
    let name = format!("ab-{}", random_hex());
    let secret = format!("sk_upstream_{}", random_hex());
    let dir = data_dir_with(&name, &base, &secret);
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let resource = format!("{}/gateway/{name}", server.issuer);
    let token = agent_token(&mut server, &http, &resource, &format!("{name}:read")).await;

    // 200 MB offered chunked; the agent reads one chunk and hangs up.
    let total: u64 = 200 * 1024 * 1024;
    let mut res = http
        .get(format!("{resource}/chunks/{total}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK);
    let first = res.chunk().await.expect("a chunk").expect("not empty");
    assert!(!first.is_empty());
    drop(res);

    let path = format!("/chunks/{total}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let call = loop {
        let found = gateway_calls(dir.path())
            .into_iter()
            .map(|v| v["detail"].clone())
            .find(|d| d["path"] == path.as_str());
        if let Some(c) = found {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no gateway.call for the abandoned download within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(call["transfer"], "aborted", "{call}");
    assert_eq!(call["status"], 200, "{call}");
    let out = call["bytes_out"].as_u64().expect("bytes_out");
    assert!(out > 0 && out < total, "{call}");
    assert!(server.stop().success());
    remove_connection(dir.path(), &name);
}
