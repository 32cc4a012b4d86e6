//! Harness for black-box tests: starts the real `gatehouse` binary on a temp data dir and a
//! loopback port, reads its JSON Lines approver output, and answers approvals on its stdin.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
        let mut child = Command::new(gatehouse_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--approver",
                "jsonl",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("GATEHOUSE_LOG", "warn")
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
                let _ = child.wait_timeout_or_kill(Duration::from_secs(5));
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
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child
            .wait_timeout_or_kill(Duration::from_secs(10))
            .expect("wait")
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
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + t;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                self.kill()?;
                return self.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `gatehouse ARGS... --data-dir DIR` to completion.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(gatehouse_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GATEHOUSE_LOG", "warn")
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

    /// Registers a client allowed the code and refresh grants: confidential
    /// (`client_secret_basic`) or public (`none`).
    pub async fn register(http: &reqwest::Client, issuer: &str, confidential: bool) -> Client {
        let res = try_register(http, issuer, confidential).await;
        let status = res.status();
        let body: Value = res.json().await.expect("registration answer is JSON");
        assert_eq!(status, 201, "registration failed: {body}");
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
        http.post(format!("{issuer}/register"))
            .json(&json!({
                "client_name": format!("e2e {method} agent"),
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": method,
                "application_type": "native",
            }))
            .send()
            .await
            .expect("POST /register")
    }

    /// GET /authorize for `client` with a PKCE challenge; returns the raw (unfollowed) answer.
    pub async fn authorize(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        challenge: &str,
        state: &str,
    ) -> reqwest::Response {
        http.get(format!("{issuer}/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", &client.client_id),
                ("redirect_uri", &client.redirect_uri),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("GET /authorize")
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
        let (verifier, challenge) = super::pkce_pair();
        let res = authorize(http, &server.issuer, client, &challenge, "st-consent").await;
        let waiting = location(&res);
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
        let code = query_param(&to_client, "code").unwrap_or_else(|| {
            panic!("the approved consent should redirect with a code: {to_client}")
        });
        (code, verifier)
    }

    /// A code from a remembered consent: /authorize must redirect straight to the client.
    /// Returns (code, verifier).
    pub async fn remembered_code(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
    ) -> (String, String) {
        let (verifier, challenge) = super::pkce_pair();
        let res = authorize(http, issuer, client, &challenge, "st-remembered").await;
        let to = location(&res);
        let code = query_param(&to, "code").unwrap_or_else(|| {
            panic!("a remembered consent should redirect straight to the client with a code: {to}")
        });
        (code, verifier)
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

    /// Sends an authorization-code exchange; returns the raw answer.
    pub async fn exchange(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        client_post(
            http,
            issuer,
            "/token",
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .send()
        .await
        .expect("POST /token")
    }

    /// Sends a refresh; returns the raw answer.
    pub async fn refresh(
        http: &reqwest::Client,
        issuer: &str,
        client: &Client,
        refresh_token: &str,
    ) -> reqwest::Response {
        client_post(
            http,
            issuer,
            "/token",
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .send()
        .await
        .expect("POST /token (refresh)")
    }

    /// Reads a 200 token response, panicking with the answer otherwise.
    pub async fn tokens(res: reqwest::Response) -> Value {
        let status = res.status();
        let body: Value = res.json().await.expect("token answer is JSON");
        assert_eq!(status, 200, "token request failed: {body}");
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
        let res = client_post(http, issuer, "/introspect", client, &[("token", token)])
            .send()
            .await
            .expect("POST /introspect");
        let status = res.status();
        let body: Value = res.json().await.expect("introspection answer is JSON");
        assert_eq!(status, 200, "introspection failed: {body}");
        body
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
