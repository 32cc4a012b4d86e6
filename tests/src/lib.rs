//! Harness for black-box tests: starts the real `gatehouse` binary on a temp data dir and a
//! loopback port, reads its JSON Lines approver output, and answers approvals on its stdin.
//!
//! [`flow`] runs the OAuth steps for tests that need tokens; [`reply`] reads whole answers for
//! tests that check the protocol; [`raw_http`] sends what HTTP clients will not (a forged `Host`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod desktop;
pub mod fake_provider;
pub mod mcp;

/// The `gatehouse` binary: `$GATEHOUSE_BIN`, or next to the test executable's parent directory
/// (`target/<profile>/gatehouse`). Build it first (`cargo build -p gatehouse-cli`).
pub fn gatehouse_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/test-xxxx -> target/<profile>/gatehouse
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("gatehouse{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p gatehouse-cli` first (or set GATEHOUSE_BIN)",
        bin.display()
    );
    bin
}

/// A running `gatehouse serve --approver jsonl`.
#[allow(missing_debug_implementations)]
pub struct Server {
    pub issuer: String,
    pub data_dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<serde_json::Value>,
    /// Lines already read but not yet asked for.
    backlog: Vec<serde_json::Value>,
    /// Every line the server printed on stdout or stderr, raw.
    output: OutputLog,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Everything a server printed (stdout and stderr lines, raw, in arrival order per stream).
#[derive(Debug, Clone, Default)]
pub struct OutputLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl OutputLog {
    fn push(&self, line: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(line.to_owned());
        }
    }
    /// All lines so far, joined with newlines.
    pub fn text(&self) -> String {
        self.0.lock().map(|v| v.join("\n")).unwrap_or_default()
    }
}

impl Server {
    /// Starts a server with extra arguments (e.g. `["--approval-timeout", "1"]`).
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::try_start(data_dir, extra).expect("server starts")
    }

    /// Starts a server, or returns what it printed on stderr if it exited instead.
    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<Server, String> {
        Self::try_start_with_env(data_dir, extra, &[])
    }

    /// Starts a server with extra arguments and environment variables (e.g.
    /// `[("GATEHOUSE_LOG", "debug")]`, which overrides the default `warn`).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::try_start_with_env(data_dir, extra, env).expect("server starts")
    }

    /// Like [`Server::try_start`], with extra environment variables.
    pub fn try_start_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut child = gatehouse_command(
            data_dir,
            &["serve", "--listen", "127.0.0.1:0", "--approver", "jsonl"],
        )
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let output = OutputLog::default();
        let (tx, rx) = mpsc::channel();
        let out_log = output.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                out_log.push(&line);
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => panic!("gatehouse printed a line that is not JSON on stdout: {line}"),
                }
            }
        });
        let (etx, erx) = mpsc::channel::<String>();
        let err_log = output.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[gatehouse] {line}");
                err_log.push(&line);
                let _ = etx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(first) => {
                assert_eq!(
                    first["event"], "listening",
                    "the first line must be the listening event: {first}"
                );
                let issuer = first["issuer"].as_str().expect("issuer").to_owned();
                let stdin = child.stdin.take();
                Ok(Server {
                    issuer,
                    data_dir: data_dir.to_path_buf(),
                    child,
                    stdin,
                    lines: rx,
                    backlog: Vec::new(),
                    output,
                    readers: vec![out_reader, err_reader],
                })
            }
            Err(_) => {
                let _ = wait_or_kill(&mut child, Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(100));
                Err(erx.try_iter().collect::<Vec<_>>().join("\n"))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn port(&self) -> u16 {
        self.issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line whose `event` is `kind` (other lines stay queued).
    pub fn expect_event(&mut self, kind: &str) -> serde_json::Value {
        self.expect_event_matching(kind, |_| true)
    }

    /// Waits for the next line whose `event` is `kind` and that `pred` accepts.
    pub fn expect_event_matching(
        &mut self,
        kind: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|v| v["event"] == kind && pred(v))
        {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == kind && pred(&v) => return v,
                Ok(v) => self.backlog.push(v),
                Err(_) => panic!("no {kind} event within 20 s; saw {:?}", self.backlog),
            }
        }
    }

    /// Sends one decision line, e.g. `json!({"approve": id})`.
    pub fn decide(&mut self, decision: serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{decision}").expect("write decision");
        stdin.flush().expect("flush");
    }

    /// Approves the next consent request, returning its approval_requested line.
    pub fn approve_next(&mut self) -> serde_json::Value {
        let req = self.expect_event("approval_requested");
        self.decide(serde_json::json!({ "approve": req["id"] }));
        self.expect_event_matching("approval_decided", |v| v["id"] == req["id"]);
        req
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        self.send_signal("TERM");
        wait_or_kill(&mut self.child, Duration::from_secs(10)).expect("wait")
    }

    /// Sends a signal (`"TERM"`, `"INT"`...) with `kill`.
    fn send_signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Everything the server printed so far (a live handle: it keeps filling while it runs).
    pub fn output(&self) -> OutputLog {
        self.output.clone()
    }

    /// Sends SIGTERM, waits for a clean exit, and waits until everything the server printed has
    /// been read; returns the exit status and the complete output.
    pub fn stop_and_collect(mut self) -> (std::process::ExitStatus, OutputLog) {
        let status = self.terminate();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, self.output.clone())
    }

    /// Sends a signal (`"TERM"`, `"INT"`...) and waits up to `timeout` for the server to exit on
    /// its own. `None` if it is still running then (it is terminated when dropped).
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        self.send_signal(signal);
        wait_for_exit(&mut self.child, timeout).ok().flatten()
    }

    /// SIGKILL, no cleanup (crash tests).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate();
        }
    }
}

/// Polls `child` until it exits or `timeout` passes: `None` if it is still running then.
pub fn wait_for_exit(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `timeout` for `child` to exit, and kills it if it has not.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> std::io::Result<std::process::ExitStatus> {
    match wait_for_exit(child, timeout)? {
        Some(status) => Ok(status),
        None => {
            child.kill()?;
            child.wait()
        }
    }
}

/// `gatehouse ARGS... --data-dir DIR` with `GATEHOUSE_LOG=warn`, ready to run or spawn.
pub fn gatehouse_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(gatehouse_bin());
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GATEHOUSE_LOG", "warn");
    command
}

/// Runs `gatehouse ARGS... --data-dir DIR` to completion.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    gatehouse_command(data_dir, args)
        .output()
        .expect("run gatehouse")
}

/// PKCE S256 pair: (verifier, challenge).
pub fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngCore;
    use sha2::{Digest, Sha256};
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let verifier = URL_SAFE_NO_PAD.encode(b);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The audit id Gatehouse records for a token: hex of the first 8 bytes of its SHA-256.
pub fn token_id(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// OAuth client steps over real HTTP, for tests that need tokens rather than test the protocol:
/// register, get a code (through the jsonl approver or a remembered consent), exchange, refresh,
/// introspect. Each step panics with the server's answer when it does not succeed.
pub mod flow {
    use super::Server;
    use super::reply::Reply;
    use reqwest::StatusCode;
    use serde_json::{Value, json};

    /// A registered client as the agent knows it.
    #[derive(Debug, Clone)]
    pub struct Client {
        pub client_id: String,
        /// Present for confidential clients (`client_secret_basic`).
        pub client_secret: Option<String>,
        pub redirect_uri: String,
    }

    /// An HTTP client that never follows redirects (the tests read `Location` themselves).
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect("http client")
    }

    /// Sends a request the harness built; panics naming it (`what`) if no answer comes back.
    async fn answer(what: &str, req: reqwest::RequestBuilder) -> reqwest::Response {
        req.send().await.expect(what)
    }

    /// Reads an answer whole, asserts its status, and returns its JSON body.
    async fn read_json(what: &str, res: reqwest::Response, want: StatusCode) -> Value {
        Reply::read(what, res).await.expect_json(want)
    }

    /// Registers a client allowed the code and refresh grants: confidential
    /// (`client_secret_basic`) or public (`none`).
    pub async fn register(http: &reqwest::Client, issuer: &str, confidential: bool) -> Client {
        let res = try_register(http, issuer, confidential).await;
        let body = read_json("registration", res, StatusCode::CREATED).await;
        Client {
            client_id: body["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: body["client_secret"].as_str().map(str::to_owned),
            redirect_uri: body["redirect_uris"][0]
                .as_str()
                .expect("redirect_uris echoed")
                .to_owned(),
        }
    }

    /// Sends the registration request of [`register`] and returns the raw answer.
    pub async fn try_register(
        http: &reqwest::Client,
        issuer: &str,
        confidential: bool,
    ) -> reqwest::Response {
        let method = if confidential {
            "client_secret_basic"
        } else {
            "none"
        };
        let req = http.post(format!("{issuer}/register")).json(&json!({
            "client_name": format!("e2e {method} agent"),
            "redirect_uris": ["http://127.0.0.1:9/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": method,
            "application_type": "native",
        }));
        answer("POST /register", req).await
    }

    /// The `/authorize` request for `client` with a PKCE challenge, not sent yet.
    pub fn authorize_request(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        challenge: &str,
        state: &str,
    ) -> reqwest::RequestBuilder {
        http.get(format!("{issuer}/authorize")).query(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", &client.redirect_uri),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
    }

    /// GET /authorize for `client` with a PKCE challenge; returns the raw (unfollowed) answer.
    pub async fn authorize(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        challenge: &str,
        state: &str,
    ) -> reqwest::Response {
        let req = authorize_request(http, issuer, client, challenge, state);
        answer("GET /authorize", req).await
    }

    /// GET /authorize for `client` with a fresh PKCE pair; returns where it redirects (asserting
    /// a 303) and the verifier.
    async fn authorize_redirect(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        state: &str,
    ) -> (String, String) {
        let (verifier, challenge) = super::pkce_pair();
        let res = authorize(http, issuer, client, &challenge, state).await;
        (location(&res), verifier)
    }

    /// The `Location` of a redirect, asserting the status is 303.
    pub fn location(res: &reqwest::Response) -> String {
        assert_eq!(res.status(), 303, "expected a 303 redirect, got {res:?}");
        res.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location header")
            .to_owned()
    }

    /// One query parameter of a URL.
    pub fn query_param(url: &str, name: &str) -> Option<String> {
        url::Url::parse(url)
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The `code` of a redirect to the client; without one, panics saying `why` there should be.
    fn code_in(redirect: &str, why: &str) -> String {
        query_param(redirect, "code").unwrap_or_else(|| panic!("{why}: {redirect}"))
    }

    /// The approval id in a waiting-page URL (`.../consent/{id}`).
    pub fn approval_id(consent_url: &str) -> String {
        consent_url
            .rsplit('/')
            .next()
            .expect("approval id in the consent URL")
            .to_owned()
    }

    /// Runs /authorize, answers the consent prompt on the server's jsonl channel with `decision`
    /// (e.g. `json!({"approve": id, "remember": "always"})` built by `decide(id)`), and follows the
    /// waiting page. Returns the final redirect to the client and the PKCE verifier.
    pub async fn consent_redirect(
        server: &mut Server,
        http: &reqwest::Client,
        client: &Client,
        decide: impl FnOnce(&str) -> Value,
    ) -> (String, String) {
        let (waiting, verifier) =
            authorize_redirect(http, &server.issuer, client, "st-consent").await;
        assert!(
            waiting.starts_with(&format!("{}/consent/", server.issuer)),
            "/authorize should send the browser to the waiting page, not to {waiting}"
        );
        let id = approval_id(&waiting);
        server.expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
        server.decide(decide(&id));
        server.expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
        let res = http.get(&waiting).send().await.expect("GET waiting page");
        (location(&res), verifier)
    }

    /// A code through an approved consent (`remember`: `None` for once, or e.g. `Some("always")`).
    /// Returns (code, verifier).
    pub async fn consent_code(
        server: &mut Server,
        http: &reqwest::Client,
        client: &Client,
        remember: Option<&str>,
    ) -> (String, String) {
        let (to_client, verifier) = consent_redirect(server, http, client, |id| match remember {
            Some(r) => json!({ "approve": id, "remember": r }),
            None => json!({ "approve": id }),
        })
        .await;
        let code = code_in(
            &to_client,
            "the approved consent should redirect with a code",
        );
        (code, verifier)
    }

    /// A code from a remembered consent: /authorize must redirect straight to the client.
    /// Returns (code, verifier).
    pub async fn remembered_code(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
    ) -> (String, String) {
        let (to, verifier) = authorize_redirect(http, issuer, client, "st-remembered").await;
        let code = code_in(
            &to,
            "a remembered consent should redirect straight to the client with a code",
        );
        (code, verifier)
    }

    /// A confidential client with tokens from a remembered consent: (client, access, refresh).
    pub async fn agent_with_tokens(
        server: &mut Server,
        http: &reqwest::Client,
    ) -> (Client, String, String) {
        let client = register(http, &server.issuer, true).await;
        let (code, verifier) = consent_code(server, http, &client, Some("always")).await;
        let t = tokens(exchange(http, &server.issuer, &client, &code, &verifier).await).await;
        let at = t["access_token"].as_str().expect("access_token").to_owned();
        let rt = t["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned();
        (client, at, rt)
    }

    /// A POST to the token endpoint family (`/token`, `/revoke`, `/introspect`) with the client's
    /// authentication (Basic for confidential clients, `client_id` in the form for public ones).
    pub fn client_post(
        http: &reqwest::Client,
        issuer: &str,
        endpoint: &str,
        client: &Client,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let req = http.post(format!("{issuer}{endpoint}"));
        let req = match &client.client_secret {
            Some(secret) => req.basic_auth(&client.client_id, Some(secret)),
            None => {
                form.push(("client_id", &client.client_id));
                req
            }
        };
        req.form(&form)
    }

    /// The form of an authorization-code exchange for `client`.
    pub fn exchange_form<'a>(
        client: &'a Client,
        code: &'a str,
        verifier: &'a str,
    ) -> [(&'static str, &'a str); 4] {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ]
    }

    /// Sends an authorization-code exchange; returns the raw answer.
    pub async fn exchange(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        let form = exchange_form(client, code, verifier);
        let req = client_post(http, issuer, "/token", client, &form);
        answer("POST /token", req).await
    }

    /// Sends a refresh; returns the raw answer.
    pub async fn refresh(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        refresh_token: &str,
    ) -> reqwest::Response {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let req = client_post(http, issuer, "/token", client, &form);
        answer("POST /token (refresh)", req).await
    }

    /// Reads a 200 token response, panicking with the answer otherwise.
    pub async fn tokens(res: reqwest::Response) -> Value {
        let body = read_json("token request", res, StatusCode::OK).await;
        assert!(body["access_token"].is_string(), "no access_token: {body}");
        body
    }

    /// Introspects `token` as `client` (which must be confidential); returns the JSON answer.
    pub async fn introspect(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        token: &str,
    ) -> Value {
        let req = client_post(http, issuer, "/introspect", client, &[("token", token)]);
        let res = answer("POST /introspect", req).await;
        read_json("introspection", res, StatusCode::OK).await
    }
}

/// Whole HTTP answers for tests that check the protocol: [`send`](reply::send) reads a response
/// into a [`Reply`](reply::Reply) and fails the test on any CORS header; every assertion of a
/// `Reply` names the request it answers.
pub mod reply {
    use reqwest::StatusCode;
    use reqwest::header::{self, HeaderMap, HeaderName};
    use serde_json::Value;
    use url::Url;

    /// One HTTP response, read whole. `what` names the request in assertion messages.
    #[derive(Debug)]
    pub struct Reply {
        pub what: String,
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: String,
    }

    /// Sends a request and reads the whole response, checking it carries no CORS header. Use
    /// [`crate::flow::http`] for the client: it never follows redirects.
    pub async fn send(what: &str, req: reqwest::RequestBuilder) -> Reply {
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        let reply = Reply::read(what, res).await;
        super::assert_no_cors_headers(reply.headers.keys().map(|k| k.as_str()), what);
        reply
    }

    impl Reply {
        /// Reads a response whole, without the CORS check of [`send`].
        pub async fn read(what: &str, res: reqwest::Response) -> Reply {
            let status = res.status();
            let headers = res.headers().clone();
            let body = res
                .text()
                .await
                .unwrap_or_else(|e| panic!("{what}: body: {e}"));
            Reply {
                what: what.to_owned(),
                status,
                headers,
                body,
            }
        }

        pub fn expect_status(&self, want: StatusCode) {
            assert_eq!(
                self.status, want,
                "{}: expected {want}, got {} with body {}",
                self.what, self.status, self.body
            );
        }

        pub fn json(&self) -> Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.body))
        }

        /// [`Reply::expect_status`], then the body as JSON.
        pub fn expect_json(&self, want: StatusCode) -> Value {
            self.expect_status(want);
            self.json()
        }

        pub fn header(&self, name: HeaderName) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }

        /// The target of a 303 See Other.
        pub fn redirect(&self) -> Url {
            self.expect_status(StatusCode::SEE_OTHER);
            let location = self
                .header(header::LOCATION)
                .unwrap_or_else(|| panic!("{}: 303 without a Location", self.what));
            Url::parse(location).unwrap_or_else(|e| {
                panic!("{}: Location {location:?} is not absolute: {e}", self.what)
            })
        }

        /// An RFC 6749 JSON error with the given status and code, not cacheable.
        pub fn assert_oauth_error(&self, status: StatusCode, error: &str) {
            self.expect_status(status);
            assert_eq!(
                self.json()["error"],
                error,
                "{}: wrong OAuth error: {}",
                self.what,
                self.body
            );
            self.assert_header(
                header::CACHE_CONTROL,
                |v| v.contains("no-store"),
                "an OAuth error must carry Cache-Control: no-store",
            );
        }

        /// Asserts the header `name` (empty when absent) passes `ok`; `rule` says what it must be.
        pub fn assert_header(&self, name: HeaderName, ok: impl Fn(&str) -> bool, rule: &str) {
            let value = self.header(name).unwrap_or("");
            assert!(ok(value), "{}: {rule}, got {value:?}", self.what);
        }

        /// An HTML page that no one may frame.
        pub fn assert_unframeable_html(&self) {
            self.assert_header(
                header::CONTENT_TYPE,
                |v| v.starts_with("text/html"),
                "expected an HTML page",
            );
            self.assert_header(
                header::CONTENT_SECURITY_POLICY,
                |v| v.contains("frame-ancestors 'none'"),
                "HTML pages must send a CSP with frame-ancestors 'none'",
            );
        }

        /// A 400 error page that sends the browser nowhere.
        pub fn assert_error_page(&self) {
            self.expect_status(StatusCode::BAD_REQUEST);
            assert!(
                self.header(header::LOCATION).is_none(),
                "{}: an untrusted client or redirect_uri must never get a redirect, got Location {:?}",
                self.what,
                self.header(header::LOCATION)
            );
            self.assert_unframeable_html();
        }
    }
}

/// Panics unless no header name is a CORS header (`Access-Control-*`): Gatehouse never sends
/// CORS headers, so no web page can read its answers. Call it on every response a test gets.
pub fn assert_no_cors_headers<'a>(names: impl IntoIterator<Item = &'a str>, context: &str) {
    let cors: Vec<&str> = names
        .into_iter()
        .filter(|n| n.to_ascii_lowercase().starts_with("access-control-"))
        .collect();
    assert!(
        cors.is_empty(),
        "{context}: Gatehouse must never send CORS headers, but the response carries {cors:?}"
    );
}

/// A response read off a raw socket by [`raw_http`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names as sent (any case) with their values, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().map(|(k, _)| k.as_str())
    }
}

/// Sends one HTTP/1.1 request to `127.0.0.1:port` over a plain TCP socket, with exactly the
/// headers given (no `Host` is added, so a test can send a forged one, or none) plus
/// `Connection: close` and, when there is a body, `Content-Length`. Reads the whole response.
/// HTTP client libraries always derive `Host` from the URL; this does not.
pub fn raw_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    use std::io::Read;
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to gatehouse");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set read timeout");
    stream.write_all(req.as_bytes()).expect("send raw request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("read the raw response to the end");
    parse_raw_response(&raw)
}

fn parse_raw_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no end of headers in the response: {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            return out;
        };
        if size == 0 || data.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = data.get(eol + 2 + size + 2..).unwrap_or_default();
    }
}

/// Helpers for tests of the vault and gateway, which use the real OS keyring.
pub mod vault {
    use std::io::Write;
    use std::path::Path;
    use std::process::{Output, Stdio};

    /// Real-keyring tests need a Secret Service; `scripts/test.sh` provides one and sets
    /// `GATEHOUSE_TEST_KEYRING`. Elsewhere they say they were skipped.
    pub fn keyring_session() -> bool {
        if std::env::var_os("GATEHOUSE_TEST_KEYRING").is_some() {
            return true;
        }
        eprintln!("skipped: needs the headless keyring session of scripts/test.sh");
        false
    }

    /// 16 random hex characters, for unique connection names and secrets.
    pub fn random_hex() -> String {
        use rand::RngCore;
        let mut b = [0u8; 8];
        rand::rng().fill_bytes(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A command's status, stdout and stderr, for assertion messages.
    pub fn text(out: &Output) -> String {
        format!(
            "status {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Runs `gatehouse connections add ARGS...` with `secret` on stdin (never on the command line).
    pub fn add(dir: &Path, args: &[&str], secret: &str, env: &[(&str, &str)]) -> Output {
        let mut all = vec!["connections", "add"];
        all.extend_from_slice(args);
        let mut child = crate::gatehouse_command(dir, &all)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{secret}\n").as_bytes())
            .expect("write secret");
        child.wait_with_output().expect("wait")
    }

    /// Panics if any file in the data dir (db, wal, shm, lock) holds `secret`.
    pub fn assert_not_in_data_dir(dir: &Path, secret: &str) {
        for entry in std::fs::read_dir(dir).expect("read data dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret is in {}",
                path.display()
            );
        }
    }
}
