//! OAuth connections end to end against a fake upstream provider on loopback
//! (`gatehouse_e2e::fake_provider`), through the real `gatehouse` binary and the real OS keyring
//! (gnome-keyring in the headless session `scripts/test.sh` starts): connect with the CLI's
//! loopback callback, refresh before expiry on a gateway call, a refused refresh expiring the
//! connection, reconnect, disconnect with RFC 7009 revocation, a bad state refused without
//! consuming the flow, and no upstream token string in agent responses, the data dir or logs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gatehouse_e2e::fake_provider::{Config, FakeProvider};
use gatehouse_e2e::vault::{assert_not_in_data_dir, keyring_session, random_hex, text};
use gatehouse_e2e::{Server, flow, gatehouse_command, pkce_pair, run_cli};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENT_ID: &str = "gatehouse-test-client";

/// The keyring entry of a connection, via `secret-tool` (an independent Secret Service client).
fn keyring_lookup(name: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "gatehouse",
            "username",
            &format!("connection:{name}"),
        ])
        .output()
        .expect("run secret-tool (apt install libsecret-tools)");
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// A `gatehouse connections add|reconnect ... --no-browser` waiting for its callback.
struct FlowCli {
    child: Child,
    /// The authorization URL it printed.
    url: String,
    /// Every stderr line (the URL line included).
    stderr: mpsc::Receiver<String>,
}

impl FlowCli {
    /// Starts the command with `stdin` on its standard input and waits for the URL it prints.
    fn start(dir: &Path, args: &[&str], stdin: &str) -> FlowCli {
        let mut child = gatehouse_command(dir, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gatehouse");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[gatehouse connections] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.starts_with("http://") || line.starts_with("https://") => {
                    return FlowCli {
                        child,
                        url: line,
                        stderr: rx,
                    };
                }
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().expect("wait");
                    panic!(
                        "no authorization URL; stderr so far: {seen:?}\n{}",
                        text(&out)
                    );
                }
            }
        }
    }

    /// Waits for the command to end: (success, stdout, all stderr).
    fn finish(self) -> (bool, String, String) {
        let out = self.child.wait_with_output().expect("wait");
        let mut err: Vec<String> = self.stderr.try_iter().collect();
        err.push(String::from_utf8_lossy(&out.stderr).into_owned());
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            err.join("\n"),
        )
    }
}

/// The person "logs in": the browser follows the provider's redirect to the callback.
async fn log_in(url: &str) -> (StatusCode, String) {
    let browser = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let res = browser
        .get(url)
        .send()
        .await
        .expect("GET authorization URL");
    let status = res.status();
    (status, res.text().await.expect("page"))
}

fn add_args<'a>(name: &'a str, urls: &'a [String; 4]) -> Vec<&'a str> {
    vec![
        "connections",
        "add",
        name,
        "--oauth",
        "custom",
        "--authorization-url",
        &urls[0],
        "--token-url",
        &urls[1],
        "--revocation-url",
        &urls[2],
        "--url",
        &urls[3],
        "--client-id",
        CLIENT_ID,
        "--client-secret-stdin",
        "--scopes",
        "api.read api.write",
        "--label",
        "work",
        "--no-browser",
        "--timeout",
        "60",
        "--json",
    ]
}

fn provider_urls(p: &FakeProvider) -> [String; 4] {
    [
        p.url("/authorize"),
        p.url("/token"),
        p.url("/revoke"),
        p.url("/api"),
    ]
}

/// Registers an agent and gets it an access token for the gateway connection `name` (read).
async fn agent_token(server: &mut Server, http: &reqwest::Client, name: &str) -> String {
    let resource = format!("{}/gateway/{name}", server.issuer);
    let scope = format!("{name}:read");
    let client = flow::register(http, &server.issuer, true).await;
    let (verifier, challenge) = pkce_pair();
    let res = flow::authorize_request(http, &server.issuer, &client, &challenge, "st-oauth")
        .query(&[("resource", resource.as_str()), ("scope", scope.as_str())])
        .send()
        .await
        .expect("GET /authorize");
    let waiting = flow::location(&res);
    let id = flow::approval_id(&waiting);
    server.expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
    server.decide(json!({ "approve": id }));
    server.expect_event_matching("approval_decided", |v| v["id"] == id.as_str());
    let res = http.get(&waiting).send().await.expect("GET waiting page");
    let to = flow::location(&res);
    let code = flow::query_param(&to, "code").unwrap_or_else(|| panic!("no code in {to}"));
    let t =
        flow::tokens(flow::exchange(http, &server.issuer, &client, &code, &verifier).await).await;
    t["access_token"].as_str().expect("access_token").to_owned()
}

/// The audit log, newest first, as JSON values.
fn log(dir: &Path) -> Vec<Value> {
    let out = run_cli(dir, &["log", "--json", "--limit", "200"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect()
}

fn connection(dir: &Path, name: &str) -> Value {
    let out = run_cli(dir, &["connections", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    rows.as_array()
        .expect("array")
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Panics if `haystack` holds any of `secrets`, naming where.
fn assert_none_in(haystack: &str, secrets: &[String], where_: &str) {
    for s in secrets {
        assert!(!haystack.contains(s.as_str()), "a secret is in {where_}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_refresh_expire_reconnect_disconnect() {
    if !keyring_session() {
        return;
    }
    // Every token is issued inside the 5-minute refresh margin, so every gateway call refreshes.
    let secret = format!("cs_{}", random_hex());
    let provider = FakeProvider::start(Config {
        client_id: CLIENT_ID.into(),
        client_secret: Some(secret.clone()),
        code_expires_in: 60,
        refresh_expires_in: 60,
        fail_refresh: false,
        fail_revoke: false,
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let name = format!("oa-{}", random_hex());
    let urls = provider_urls(&provider);
    let mut cli_output = String::new();

    // Connect through the real CLI: it prints the authorization URL and waits for the callback.
    let cli = FlowCli::start(dir.path(), &add_args(&name, &urls), &format!("{secret}\n"));
    assert!(
        cli.url.starts_with(&urls[0]),
        "the URL is the provider's: {}",
        cli.url
    );
    let auth = url::Url::parse(&cli.url).expect("authorization URL");
    let q = |k: &str| {
        auth.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(q("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(q("scope").as_deref(), Some("api.read api.write"));
    let redirect = q("redirect_uri").expect("redirect_uri");
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/connect/callback"),
        "{redirect}"
    );
    assert!(
        q("state").is_some_and(|s| s.len() >= 40),
        "{:?}",
        q("state")
    );

    // A forged callback (wrong state) is refused with a page and does not consume the flow.
    let http = flow::http();
    let forged = format!(
        "{redirect}?code=x&state={}",
        q("state")
            .expect("state")
            .replace(|c: char| c.is_ascii_alphanumeric(), "A")
    );
    let res = http.get(&forged).send().await.expect("GET forged callback");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.expect("page");
    assert!(page.contains("unknown to Gatehouse"), "{page}");

    let (status, page) = log_in(&cli.url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("connected"), "{page}");
    let (ok, stdout, stderr) = cli.finish();
    assert!(ok, "{stdout}\n{stderr}");
    cli_output.push_str(&stdout);
    cli_output.push_str(&stderr);
    let row: Value = serde_json::from_str(stdout.trim()).expect("row json");
    assert_eq!(row["kind"], "oauth");
    assert_eq!(row["provider"], "custom");
    assert_eq!(row["label"], "work");
    assert_eq!(row["status"], "active");
    assert_eq!(row["scopes"], json!(["api.read", "api.write"]));
    assert!(row["expires_at"].is_i64(), "{row}");
    assert_eq!(provider.record(|r| r.code_grants), 1);
    assert_eq!(provider.record(|r| r.bad_token_requests), 0);

    // The tokens and the client secret are in the keyring entry, as one JSON document.
    let first_at = provider.record(|r| r.access_tokens[0].clone());
    let entry = keyring_lookup(&name).expect("keyring entry");
    let doc: Value = serde_json::from_str(&entry).expect("entry json");
    assert_eq!(doc["access_token"], first_at.as_str());
    assert_eq!(doc["client_secret"], secret.as_str());

    // Refresh before expiry: the first gateway call finds the token inside the margin, refreshes
    // it, and calls with the new one.
    let agent = agent_token(&mut server, &http, &name).await;
    let gw = format!("{}/gateway/{name}/things", server.issuer);
    let res = http.get(&gw).bearer_auth(&agent).send().await.expect("GET");
    let status = res.status();
    let headers = format!("{:?}", res.headers());
    let body = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["path"],
        "things"
    );
    let mut agent_saw = format!("{headers}\n{body}");
    assert_eq!(provider.record(|r| r.refresh_grants), 1);
    let (second_at, bearers) =
        provider.record(|r| (r.access_tokens[1].clone(), r.api_bearers.clone()));
    assert_eq!(
        bearers,
        vec![second_at.clone()],
        "the call used the new token"
    );
    let entry: Value = serde_json::from_str(&keyring_lookup(&name).expect("entry")).expect("json");
    assert_eq!(
        entry["refresh_token"],
        provider.record(|r| r.refresh_tokens[1].clone()).as_str(),
        "the rotated refresh token is stored"
    );
    assert!(kinds(&log(dir.path())).contains(&"connection.refreshed".to_owned()));

    // The provider refuses the next refresh: the connection expires and the gateway says so.
    provider.set(|c| c.fail_refresh = true);
    let res = http.get(&gw).bearer_auth(&agent).send().await.expect("GET");
    let status = res.status();
    let body = res.text().await.expect("body");
    agent_saw.push_str(&body);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let err: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(err["error"], "connection_unavailable", "{err}");
    let why = err["error_description"].as_str().unwrap_or_default();
    assert!(
        why.contains("expired") && why.contains("reconnect"),
        "{why}"
    );
    assert_eq!(provider.record(|r| r.refused_refreshes), 1);
    assert_eq!(connection(dir.path(), &name)["status"], "expired");
    let events = log(dir.path());
    let expired = events
        .iter()
        .find(|e| e["kind"] == "connection.expired")
        .expect("connection.expired");
    assert!(
        expired["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("invalid_grant")),
        "{expired}"
    );
    // Expired stays expired: no further refresh attempts, the same clear error.
    let res = http.get(&gw).bearer_auth(&agent).send().await.expect("GET");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(provider.record(|r| r.refused_refreshes), 1);

    // Reconnect: the flow again with the stored client settings and secret; active again.
    provider.set(|c| {
        c.fail_refresh = false;
        c.code_expires_in = 3600;
    });
    let cli = FlowCli::start(
        dir.path(),
        &[
            "connections",
            "reconnect",
            &name,
            "--no-browser",
            "--timeout",
            "60",
            "--json",
        ],
        "",
    );
    let (status, page) = log_in(&cli.url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (ok, stdout, stderr) = cli.finish();
    assert!(ok, "{stdout}\n{stderr}");
    cli_output.push_str(&stdout);
    cli_output.push_str(&stderr);
    assert_eq!(connection(dir.path(), &name)["status"], "active");
    assert_eq!(provider.record(|r| r.code_grants), 2);
    let res = http.get(&gw).bearer_auth(&agent).send().await.expect("GET");
    let status = res.status();
    let body = res.text().await.expect("body");
    agent_saw.push_str(&body);
    assert_eq!(status, StatusCode::OK, "{body}");
    let (third_at, last_bearer, refreshes) = provider.record(|r| {
        (
            r.access_tokens[2].clone(),
            r.api_bearers.last().cloned(),
            r.refresh_grants,
        )
    });
    assert_eq!(last_bearer.as_deref(), Some(third_at.as_str()));
    assert_eq!(refreshes, 1, "a token valid for an hour is not refreshed");
    assert!(kinds(&log(dir.path())).contains(&"connection.reconnected".to_owned()));

    // Disconnect: revoked at the provider (refresh token, then access token), entry gone.
    let out = run_cli(dir.path(), &["connections", "rm", &name, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    cli_output.push_str(&text(&out));
    let removed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(removed["upstream_revocation"], "ok", "{removed}");
    assert_eq!(removed["keyring_entry_deleted"], true);
    let (revoked, live_rt) = provider.record(|r| (r.revoked.clone(), r.refresh_tokens[2].clone()));
    assert_eq!(
        revoked,
        vec![
            (live_rt, "refresh_token".to_owned()),
            (third_at.clone(), "access_token".to_owned())
        ]
    );
    assert_eq!(keyring_lookup(&name), None);
    let events = log(dir.path());
    let removed_ev = events
        .iter()
        .find(|e| e["kind"] == "connection.removed")
        .expect("connection.removed");
    assert_eq!(removed_ev["detail"]["upstream_revocation"], "ok");
    let out = run_cli(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // No upstream token or the client secret in what the agent saw, the CLI printed, the log,
    // the server's output or any file of the data dir.
    let mut secrets = provider.all_tokens();
    secrets.push(secret.clone());
    assert_none_in(&agent_saw, &secrets, "a response to the agent");
    assert_none_in(&cli_output, &secrets, "the CLI's output");
    assert_none_in(
        &serde_json::to_string(&events).expect("json"),
        &secrets,
        "the audit log",
    );
    let (_, output) = server.stop_and_collect();
    assert_none_in(&output.text(), &secrets, "the server's output");
    for s in &secrets {
        assert_not_in_data_dir(dir.path(), s);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_without_revocation_and_a_refused_login() {
    if !keyring_session() {
        return;
    }
    // A public client (no secret) and no revocation endpoint.
    let provider = FakeProvider::start(Config {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        code_expires_in: 3600,
        refresh_expires_in: 3600,
        fail_refresh: false,
        fail_revoke: false,
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    Server::start(dir.path(), &[]).stop();
    let name = format!("pub-{}", random_hex());
    let (authz, token, api) = (
        provider.url("/authorize"),
        provider.url("/token"),
        provider.url("/api"),
    );
    let args = [
        "connections",
        "add",
        &name,
        "--oauth",
        "custom",
        "--authorization-url",
        &authz,
        "--token-url",
        &token,
        "--url",
        &api,
        "--client-id",
        CLIENT_ID,
        "--no-browser",
        "--timeout",
        "60",
    ];

    // The person refuses at the provider: the callback carries error=access_denied.
    let cli = FlowCli::start(dir.path(), &args, "");
    let auth = url::Url::parse(&cli.url).expect("url");
    let state = auth
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let redirect = auth
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("redirect_uri");
    let res = flow::http()
        .get(format!("{redirect}?error=access_denied&state={state}"))
        .send()
        .await
        .expect("GET callback");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (ok, stdout, stderr) = cli.finish();
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("access_denied"), "{stderr}");
    assert!(connection(dir.path(), &name).is_null(), "nothing stored");
    assert_eq!(keyring_lookup(&name), None);

    // Connect for real, then disconnect: no revocation endpoint, so `not_supported`.
    let cli = FlowCli::start(dir.path(), &args, "");
    let (status, page) = log_in(&cli.url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (ok, stdout, stderr) = cli.finish();
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("Connected"), "{stdout}");
    let entry: Value = serde_json::from_str(&keyring_lookup(&name).expect("entry")).expect("json");
    assert!(entry.get("client_secret").is_none(), "{entry:?}");
    let out = run_cli(dir.path(), &["connections", "rm", &name, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let removed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(removed["upstream_revocation"], "not_supported");
    assert!(provider.record(|r| r.revoked.is_empty()));
    assert_eq!(keyring_lookup(&name), None);
    for s in provider.all_tokens() {
        assert_not_in_data_dir(dir.path(), &s);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_main_servers_callback_refuses_an_unknown_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let res = flow::http()
        .get(server.url("/connect/callback?code=abc&state=never-issued"))
        .send()
        .await
        .expect("GET callback");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = res.text().await.expect("page");
    assert!(page.contains("nothing was changed"), "{page}");
    // A foreign Host (DNS rebinding) is refused before any flow is looked at.
    let res = flow::http()
        .get(server.url("/connect/callback?state=x"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("GET callback");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn background_refresh_then_a_failed_revocation_still_removes_locally() {
    if !keyring_session() {
        return;
    }
    let secret = format!("cs_{}", random_hex());
    let provider = FakeProvider::start(Config {
        client_id: CLIENT_ID.into(),
        client_secret: Some(secret.clone()),
        code_expires_in: 90,
        refresh_expires_in: 3600,
        fail_refresh: false,
        fail_revoke: false,
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    Server::start(dir.path(), &[]).stop();
    let name = format!("bg-{}", random_hex());
    let urls = provider_urls(&provider);
    let cli = FlowCli::start(dir.path(), &add_args(&name, &urls), &format!("{secret}\n"));
    let (status, page) = log_in(&cli.url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (ok, stdout, stderr) = cli.finish();
    assert!(ok, "{stdout}\n{stderr}");
    let before = connection(dir.path(), &name)["expires_at"]
        .as_i64()
        .expect("expires_at");
    assert_eq!(provider.record(|r| r.refresh_grants), 0);

    // No agent calls anything: the server's background task finds the token inside the margin.
    let server = Server::start(dir.path(), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while provider.record(|r| r.refresh_grants) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background refresh within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut after = before;
    while after == before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = connection(dir.path(), &name)["expires_at"]
            .as_i64()
            .unwrap_or(before);
    }
    assert!(after > before + 3_000_000, "{before} -> {after}");
    assert_eq!(provider.record(|r| r.api_bearers.len()), 0);
    let entry: Value = serde_json::from_str(&keyring_lookup(&name).expect("entry")).expect("json");
    assert_eq!(
        entry["access_token"],
        provider.record(|r| r.access_tokens[1].clone()).as_str()
    );
    server.stop();

    // The provider fails the revocation: the connection is still removed locally, and the
    // outcome says so without a token in it.
    provider.set(|c| c.fail_revoke = true);
    let out = run_cli(dir.path(), &["connections", "rm", &name, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let removed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let outcome = removed["upstream_revocation"].as_str().unwrap_or_default();
    assert_eq!(
        outcome,
        "failed: refresh token: HTTP 503 temporarily_unavailable; \
         access token: HTTP 503 temporarily_unavailable"
    );
    assert_eq!(provider.record(|r| r.revoked.len()), 2);
    assert_eq!(keyring_lookup(&name), None);
    assert!(connection(dir.path(), &name).is_null());
    let events = serde_json::to_string(&log(dir.path())).expect("json");
    assert!(
        events.contains("failed: refresh token: HTTP 503"),
        "{events}"
    );
    for s in provider.all_tokens() {
        assert!(!events.contains(&s), "a token is in the audit log");
        assert_not_in_data_dir(dir.path(), &s);
    }
}
