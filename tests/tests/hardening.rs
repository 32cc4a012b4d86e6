//! Local-server hardening of the real `gatehouse serve`, over loopback: DNS-rebinding (`Host`) and
//! cross-origin (`Origin`) refusals, no CORS anywhere, state changes only on POST, unframeable
//! pages, loopback-only listening, one server per data dir, clean shutdown on signals, and
//! approvals that survive a restart.
//!
//! Requests with a forged `Host` go over a raw TCP socket ([`raw_http`]) because HTTP clients
//! always derive `Host` from the URL. Every response is checked for CORS headers.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gatehouse_e2e::reply::send;
use gatehouse_e2e::{
    RawResponse, Server, assert_no_cors_headers, flow, gatehouse_command, pkce_pair, raw_http,
    wait_for_exit,
};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::json;
use tempfile::TempDir;
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const METADATA: &str = "/.well-known/oauth-authorization-server";

// ---- harness -----------------------------------------------------------------------------------

/// A fresh `gatehouse serve --approver jsonl` on its own temp data dir.
struct Gatehouse {
    // Fields drop in order: the server stops before its data dir is removed.
    server: Server,
    http: reqwest::Client,
    dir: TempDir,
}

impl Gatehouse {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp data dir");
        let server = Server::start(dir.path(), &[]);
        Self {
            server,
            http: flow::http(),
            dir,
        }
    }

    fn port(&self) -> u16 {
        self.server.port()
    }

    /// GET the metadata document over a raw socket with this `Host`.
    fn metadata_with_host(&self, host: &str) -> RawResponse {
        raw(self.port(), "GET", METADATA, &[("Host", host)], "")
    }

    fn assert_host_refused(&self, host: &str) {
        let res = self.metadata_with_host(host);
        assert_eq!(res.status, 403, "Host {host} must be refused: {}", res.body);
    }

    /// GET the metadata document.
    fn get_metadata(&self) -> reqwest::RequestBuilder {
        self.http.get(self.server.url(METADATA))
    }

    /// POST /register for a minimal public client.
    fn post_register(&self) -> reqwest::RequestBuilder {
        self.http
            .post(self.server.url("/register"))
            .json(&json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }))
    }

    /// A request of each kind the guard must cover: a read, a registration, a token request.
    fn requests(&self) -> Vec<(&'static str, reqwest::RequestBuilder)> {
        vec![
            ("GET metadata", self.get_metadata()),
            ("POST /register", self.post_register()),
            (
                "POST /token",
                self.http
                    .post(self.server.url("/token"))
                    .form(&[("grant_type", "authorization_code"), ("code", "x")]),
            ),
        ]
    }

    /// Sends each of [`Gatehouse::requests`] with this `Origin`, expecting 403.
    async fn assert_origin_refused(&self, origin: &str) {
        for (what, req) in self.requests() {
            send(
                &format!("{what} with Origin {origin}"),
                req.header(header::ORIGIN, origin),
            )
            .await
            .expect_status(StatusCode::FORBIDDEN);
        }
    }

    /// Sends a metadata read and a registration, each as `dress` makes it, expecting both served.
    /// `how` says how they were dressed in the messages.
    async fn assert_served(
        &self,
        how: &str,
        dress: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) {
        send(&format!("GET metadata {how}"), dress(self.get_metadata()))
            .await
            .expect_status(StatusCode::OK);
        send(
            &format!("POST /register {how}"),
            dress(self.post_register()),
        )
        .await
        .expect_status(StatusCode::CREATED);
    }

    async fn register_public(&self) -> String {
        let req = self.http.post(self.server.url("/register")).json(&json!({
            "client_name": "Hardening agent",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }));
        let client = send("POST /register", req)
            .await
            .expect_json(StatusCode::CREATED);
        client["client_id"].as_str().expect("client_id").to_owned()
    }

    /// Starts an authorization request; returns the waiting page URL and the PKCE verifier.
    async fn authorize(&self, client_id: &str) -> (Url, String) {
        let (verifier, challenge) = pkce_pair();
        let reply = send(
            "GET /authorize",
            self.http.get(self.server.url("/authorize")).query(&[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "files:read"),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
        (reply.redirect(), verifier)
    }
}

/// Raw request to `127.0.0.1:port` with exactly these headers; checks the response carries no
/// CORS header.
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    let res = raw_http(port, method, path, headers, body);
    assert_no_cors_headers(
        res.header_names(),
        &format!("raw {method} {path} {headers:?}"),
    );
    res
}

/// GET the metadata document over a raw socket with a `Host` the server accepts, expecting 200.
fn assert_metadata_served(port: u16) {
    let host = format!("127.0.0.1:{port}");
    let res = raw(port, "GET", METADATA, &[("Host", &host)], "");
    assert_eq!(res.status, 200);
}

/// Runs `gatehouse serve --listen LISTEN` on `data_dir`, expecting it to exit by itself within
/// 15 s with an error and before it listens (`what` names the attempt in the messages); returns
/// what it printed on stderr.
fn serve_refused(data_dir: &Path, listen: &str, what: &str) -> String {
    let mut child = gatehouse_command(
        data_dir,
        &["serve", "--approver", "jsonl", "--listen", listen],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn gatehouse");
    let exited = wait_for_exit(&mut child, Duration::from_secs(15)).expect("try_wait");
    if exited.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        exited.is_some(),
        "`gatehouse serve --listen {listen}` kept running; stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{what} must fail, exited {:?}",
        out.status
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "{what} must not start listening"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---- Host (DNS rebinding) ------------------------------------------------------------------------

#[test]
fn a_foreign_host_is_refused_with_403() {
    let gh = Gatehouse::start();
    let port = gh.port();
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("192.168.1.10:{port}"),
    ] {
        gh.assert_host_refused(&host);
        let body = "grant_type=authorization_code&code=x&client_id=y";
        let res = raw(
            port,
            "POST",
            "/token",
            &[
                ("Host", &host),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        );
        assert_eq!(res.status, 403, "POST with Host {host} must be refused");
    }
    let res = raw(port, "GET", METADATA, &[], "");
    assert_eq!(res.status, 403, "a request without Host must be refused");
}

#[test]
fn a_host_with_the_wrong_port_is_refused_with_403() {
    let gh = Gatehouse::start();
    let other = gh.port().wrapping_add(1).max(1);
    for host in [
        format!("127.0.0.1:{other}"),
        format!("localhost:{other}"),
        format!("[::1]:{other}"),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "127.0.0.1:80".to_owned(),
    ] {
        gh.assert_host_refused(&host);
    }
}

#[test]
fn loopback_hosts_with_the_right_port_are_served() {
    // Also shows that the raw client is sound, so the 403s above are the guard's doing.
    let gh = Gatehouse::start();
    let port = gh.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        let res = gh.metadata_with_host(&host);
        assert_eq!(res.status, 200, "Host {host} must be served: {}", res.body);
        assert!(res.body.contains("\"issuer\""), "{}", res.body);
    }
}

// ---- Origin (cross-site requests) ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_origin_is_refused_with_403() {
    let gh = Gatehouse::start();
    let port = gh.port();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    let https_self = format!("https://127.0.0.1:{port}");
    for origin in [
        "https://evil.example",
        "http://evil.example",
        other_port.as_str(),
        https_self.as_str(),
        "http://localhost",
    ] {
        gh.assert_origin_refused(origin).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_null_is_refused_with_403() {
    Gatehouse::start().assert_origin_refused("null").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_same_origin_origin_is_accepted() {
    let gh = Gatehouse::start();
    let port = gh.port();
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        gh.assert_served(&format!("with Origin {origin}"), |req| {
            req.header(header::ORIGIN, &origin)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_fetch_sec_fetch_headers_without_origin_are_accepted() {
    // What Node's fetch (undici), and so the MCP TypeScript SDK, sends: Sec-Fetch-Mode: cors and
    // no Origin. Refusing it would lock those clients out.
    let gh = Gatehouse::start();
    let node = |req: reqwest::RequestBuilder| {
        req.header("sec-fetch-mode", "cors")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-dest", "empty")
            .header(header::USER_AGENT, "node")
            .header(header::ACCEPT, "*/*")
    };
    gh.assert_served("as Node fetch", node).await;
}

// ---- methods and CORS ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn get_on_a_post_only_route_is_405() {
    let gh = Gatehouse::start();
    for path in ["/token", "/register", "/revoke", "/introspect"] {
        send(
            &format!("GET {path}"),
            gh.http
                .get(gh.server.url(path))
                .query(&[("grant_type", "authorization_code"), ("token", "x")]),
        )
        .await
        .expect_status(StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cors_preflight_gets_no_cors_headers() {
    let gh = Gatehouse::start();
    let port = gh.port();
    for path in ["/token", "/register", "/introspect", "/revoke", METADATA] {
        for origin in [
            format!("http://127.0.0.1:{port}"),
            "https://evil.example".to_owned(),
        ] {
            // `send` fails the test on any Access-Control-* header.
            let reply = send(
                &format!("OPTIONS {path} from {origin}"),
                gh.http
                    .request(reqwest::Method::OPTIONS, gh.server.url(path))
                    .header(header::ORIGIN, &origin)
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                    .header(
                        header::ACCESS_CONTROL_REQUEST_HEADERS,
                        "authorization, content-type",
                    ),
            )
            .await;
            assert!(
                !reply.status.is_success(),
                "a preflight must not succeed: {} {}",
                reply.status,
                reply.body
            );
        }
    }
}

// ---- pages ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn html_pages_forbid_framing() {
    let mut gh = Gatehouse::start();
    let error_page = send(
        "GET /authorize for an unknown client",
        gh.http
            .get(gh.server.url("/authorize"))
            .query(&[("client_id", "agt_unknown"), ("response_type", "code")]),
    )
    .await;
    error_page.expect_status(StatusCode::BAD_REQUEST);
    error_page.assert_unframeable_html();

    let client_id = gh.register_public().await;
    let (waiting, _) = gh.authorize(&client_id).await;
    let page = send("GET the waiting page", gh.http.get(waiting.as_str())).await;
    page.expect_status(StatusCode::OK);
    page.assert_unframeable_html();
    gh.server.expect_event("approval_requested");
}

// ---- process: listening, locking, signals, restarts -------------------------------------------

#[test]
fn serve_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().expect("temp data dir");
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let stderr = serve_refused(dir.path(), listen, &format!("--listen {listen}"));
        assert!(
            stderr.contains("loopback"),
            "--listen {listen}: the message must say Gatehouse listens on loopback only: {stderr}"
        );
    }
}

#[test]
fn a_second_serve_on_the_same_data_dir_exits_naming_the_dir() {
    let gh = Gatehouse::start();
    let stderr = serve_refused(
        gh.dir.path(),
        "127.0.0.1:0",
        "a second serve on the same data dir",
    );
    assert!(
        stderr.contains(&gh.dir.path().display().to_string()),
        "the message must name the data dir {}: {stderr}",
        gh.dir.path().display()
    );
    // The first one is unaffected.
    assert_metadata_served(gh.port());
}

/// Sends `signal`, expects exit 0 within 5 s, then a new serve on the same dir at once.
fn assert_stops_cleanly_on(signal: &str) {
    let dir = tempfile::tempdir().expect("temp data dir");
    let mut server = Server::start(dir.path(), &[]);
    let asked = Instant::now();
    let status = server
        .signal_and_wait(signal, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("serve still running 5 s after SIG{signal}"));
    assert!(
        status.success(),
        "serve must exit 0 on SIG{signal}, got {status:?}"
    );
    eprintln!("SIG{signal}: stopped in {:?}", asked.elapsed());
    drop(server);

    let again = Server::try_start(dir.path(), &[]).unwrap_or_else(|stderr| {
        panic!("a new serve must start at once after SIG{signal} released the lock: {stderr}")
    });
    assert_metadata_served(again.port());
}

#[test]
fn sigterm_stops_serve_cleanly_and_releases_the_data_dir() {
    assert_stops_cleanly_on("TERM");
}

#[test]
fn sigint_stops_serve_cleanly_and_releases_the_data_dir() {
    assert_stops_cleanly_on("INT");
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_pending_at_shutdown_are_announced_again_after_restart_and_can_be_approved() {
    let mut gh = Gatehouse::start();
    let client_id = gh.register_public().await;
    let (waiting, verifier) = gh.authorize(&client_id).await;
    let before = gh.server.expect_event("approval_requested");
    let id = before["id"].as_str().expect("approval id").to_owned();
    assert!(waiting.path().ends_with(&id), "{waiting} is for {id}");

    let dir = gh.dir;
    let status = gh.server.stop();
    assert!(status.success(), "serve must exit 0 on SIGTERM: {status:?}");

    let mut server = Server::start(dir.path(), &[]);
    let again = server.expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
    assert_eq!(again["client_id"], before["client_id"]);
    assert_eq!(again["scopes"], before["scopes"]);
    server.decide(json!({ "approve": id }));
    let decided = server.expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
    assert_eq!(decided["decision"], "approved", "{decided}");

    let gh = Gatehouse {
        server,
        http: gh.http,
        dir,
    };
    let done = send(
        "GET the waiting page after restart",
        gh.http.get(gh.server.url(waiting.path())),
    )
    .await
    .redirect();
    assert!(
        done.as_str().starts_with(REDIRECT),
        "after the restart the approval completes to the client: {done}"
    );
    let q: std::collections::HashMap<String, String> = done.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));
    assert_eq!(q.get("iss"), Some(&gh.server.issuer));
    let code = q.get("code").expect("a code after approval");
    send(
        "POST /token after restart",
        gh.http.post(gh.server.url("/token")).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ]),
    )
    .await
    .expect_status(StatusCode::OK);
}
