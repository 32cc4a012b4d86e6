//! Secrets at rest: after a full OAuth flow, no access token, refresh token, authorization code or
//! client secret that Gatehouse handed out can be found in any file of the data dir (database,
//! WAL, shared memory, lock) nor in anything the server printed, even at `GATEHOUSE_LOG=debug`.
//! Gatehouse keeps only SHA-256 hashes, and a leaked file must not leak a usable secret.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_e2e::Server;
use gatehouse_e2e::flow::{self, Client};
use serde_json::{Value, json};

/// A secret handed to a client, and what it was.
struct Handed {
    what: String,
    secret: String,
}

impl Handed {
    /// The byte strings that must not appear: the whole secret, its random part after the
    /// `gth_xx_` prefix, and the raw random bytes that part encodes.
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![(
            "the whole secret".to_owned(),
            self.secret.as_bytes().to_vec(),
        )];
        if let Some(random) = self.secret.strip_prefix("gth_").and_then(|s| s.get(3..)) {
            out.push(("its random part".into(), random.as_bytes().to_vec()));
            if let Ok(raw) = URL_SAFE_NO_PAD.decode(random) {
                out.push(("its raw random bytes".into(), raw));
            }
        }
        out
    }
}

#[derive(Default)]
struct Secrets(Vec<Handed>);

impl Secrets {
    fn add(&mut self, what: &str, secret: &str) {
        assert!(
            secret.starts_with("gth_") && secret.len() >= 7 + 43,
            "unexpected format for the {what}: a gth_xx_ prefix and 256 random bits"
        );
        self.0.push(Handed {
            what: what.to_owned(),
            secret: secret.to_owned(),
        });
    }

    fn add_tokens(&mut self, what: &str, body: &Value) {
        let at = body["access_token"].as_str().expect("access_token");
        self.add(&format!("access token ({what})"), at);
        if let Some(rt) = body["refresh_token"].as_str() {
            self.add(&format!("refresh token ({what})"), rt);
        }
    }

    /// Every secret found in `haystack`, described.
    fn found_in(&self, haystack: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for h in &self.0 {
            for (part, needle) in h.needles() {
                if contains(haystack, &needle) {
                    found.push(format!("{part} of the {}", h.what));
                }
            }
        }
        found
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read data dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Reads every file of the data dir as raw bytes and fails naming each secret found and where.
fn assert_no_secret_in_files(dir: &Path, secrets: &Secrets, when: &str) -> Vec<String> {
    let files = files_under(dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "gatehouse.db"),
        "{when}: the data dir should hold gatehouse.db, found {names:?}"
    );
    let mut leaks = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)
            .unwrap_or_else(|e| panic!("{when}: cannot read {}: {e}", file.display()));
        for leak in secrets.found_in(&bytes) {
            leaks.push(format!("{leak} in {}", file.display()));
        }
    }
    assert!(
        leaks.is_empty(),
        "{when}: secrets handed to clients are stored in the data dir:\n  {}",
        leaks.join("\n  ")
    );
    names
}

async fn revoke(http: &reqwest::Client, issuer: &str, client: &Client, token: &str) {
    let res = flow::client_post(http, issuer, "/revoke", client, &[("token", token)])
        .send()
        .await
        .expect("POST /revoke");
    assert_eq!(res.status(), 200, "revocation failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_handed_out_is_stored_in_the_data_dir_or_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A short approval timeout so one consent can expire; debug logging so the logs say the most.
    let mut server = Server::start_with_env(
        dir.path(),
        &["--approval-timeout", "2"],
        &[("GATEHOUSE_LOG", "debug"), ("RUST_LOG", "debug")],
    );
    let issuer = server.issuer.clone();
    let http = flow::http();
    let mut secrets = Secrets::default();

    // A public client: consent once, exchange, refresh, revoke its refresh token.
    let public = flow::register(&http, &issuer, false).await;
    let (code, verifier) = flow::consent_code(&mut server, &http, &public, None).await;
    secrets.add("code (public client)", &code);
    let t = flow::tokens(flow::exchange(&http, &issuer, &public, &code, &verifier).await).await;
    secrets.add_tokens("public client, code exchange", &t);
    let rt = t["refresh_token"].as_str().expect("refresh_token");
    let t = flow::tokens(flow::refresh(&http, &issuer, &public, rt).await).await;
    secrets.add_tokens("public client, refresh", &t);
    revoke(
        &http,
        &issuer,
        &public,
        t["refresh_token"].as_str().expect("rt"),
    )
    .await;

    // A confidential client: remembered consent, exchange, introspection, refresh, a second code
    // from the remembered consent, revocation of an access token, and a code never exchanged.
    let confidential = flow::register(&http, &issuer, true).await;
    secrets.add(
        "client secret",
        confidential
            .client_secret
            .as_deref()
            .expect("client_secret"),
    );
    let (code, verifier) =
        flow::consent_code(&mut server, &http, &confidential, Some("always")).await;
    secrets.add("code (confidential client)", &code);
    let t =
        flow::tokens(flow::exchange(&http, &issuer, &confidential, &code, &verifier).await).await;
    secrets.add_tokens("confidential client, code exchange", &t);
    let at = t["access_token"].as_str().expect("access_token");
    let intro = flow::introspect(&http, &issuer, &confidential, at).await;
    assert_eq!(intro["active"], true, "fresh token is active: {intro}");
    let rt = t["refresh_token"].as_str().expect("refresh_token");
    let t = flow::tokens(flow::refresh(&http, &issuer, &confidential, rt).await).await;
    secrets.add_tokens("confidential client, refresh", &t);
    let (code, verifier) = flow::remembered_code(&http, &issuer, &confidential).await;
    secrets.add("code (remembered consent)", &code);
    let t =
        flow::tokens(flow::exchange(&http, &issuer, &confidential, &code, &verifier).await).await;
    secrets.add_tokens("confidential client, remembered consent", &t);
    let at = t["access_token"].as_str().expect("access_token");
    revoke(&http, &issuer, &confidential, at).await;
    let intro = flow::introspect(&http, &issuer, &confidential, at).await;
    assert_eq!(
        intro,
        json!({ "active": false }),
        "revoked token is inactive"
    );
    let (unused, _) = flow::remembered_code(&http, &issuer, &confidential).await;
    secrets.add("code (never exchanged)", &unused);

    // A denied consent and an expired one (the public client has nothing remembered).
    let (to_client, _) =
        flow::consent_redirect(&mut server, &http, &public, |id| json!({ "deny": id })).await;
    assert_eq!(
        flow::query_param(&to_client, "error").as_deref(),
        Some("access_denied"),
        "denied consent: {to_client}"
    );
    let (_, challenge) = gatehouse_e2e::pkce_pair();
    let waiting =
        flow::location(&flow::authorize(&http, &issuer, &public, &challenge, "st-exp").await);
    let id = flow::approval_id(&waiting);
    server.expect_event_matching("approval_decided", |v| {
        v["id"] == id.as_str() && v["decision"] == "expired"
    });
    let res = http.get(&waiting).send().await.expect("GET waiting page");
    let to_client = flow::location(&res);
    assert_eq!(
        flow::query_param(&to_client, "error").as_deref(),
        Some("access_denied"),
        "expired consent: {to_client}"
    );

    // CIBA and the device grant: the auth_req_id, the device_code and their tokens.
    for (grant, param, start, confidential) in [
        (
            "urn:openid:params:grant-type:ciba",
            "auth_req_id",
            "/bc-authorize",
            true,
        ),
        (
            "urn:ietf:params:oauth:grant-type:device_code",
            "device_code",
            "/device_authorization",
            false,
        ),
    ] {
        let reg: Value = http
            .post(format!("{issuer}/register"))
            .json(&json!({
                "grant_types": [grant],
                "token_endpoint_auth_method": if confidential { "client_secret_basic" } else { "none" },
            }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("registration JSON");
        let agent = Client {
            client_id: reg["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: reg["client_secret"].as_str().map(str::to_owned),
            redirect_uri: String::new(),
        };
        if let Some(secret) = &agent.client_secret {
            secrets.add("client secret (CIBA)", secret);
        }
        let form = [("login_hint", "me"), ("scope", "deploy")];
        let ack: Value = flow::client_post(&http, &issuer, start, &agent, &form)
            .send()
            .await
            .expect(start)
            .json()
            .await
            .expect("acknowledgement JSON");
        let handle = ack[param].as_str().expect("handle").to_owned();
        secrets.add(param, &handle);
        let req = server.expect_event_matching("approval_requested", |v| {
            v["client_id"] == agent.client_id.as_str()
        });
        server.decide(json!({ "approve": req["id"] }));
        server.expect_event_matching("approval_decided", |v| v["id"] == req["id"]);
        let poll = [("grant_type", grant), (param, handle.as_str())];
        let t = flow::tokens(
            flow::client_post(&http, &issuer, "/token", &agent, &poll)
                .send()
                .await
                .expect("poll"),
        )
        .await;
        secrets.add_tokens(param, &t);
    }

    // While the server runs (the WAL holds the recent writes)...
    let names = assert_no_secret_in_files(dir.path(), &secrets, "while the server runs");
    assert!(
        names.iter().any(|n| n == "gatehouse.db-wal"),
        "the WAL should exist while the server runs, found {names:?}"
    );
    let so_far = server.output().text();
    let leaks = secrets.found_in(so_far.as_bytes());
    assert!(
        leaks.is_empty(),
        "the server printed secrets while running:\n  {}",
        leaks.join("\n  ")
    );

    // ...and after a clean stop (the WAL folded back into the database).
    let (status, output) = server.stop_and_collect();
    assert!(status.success(), "serve should exit cleanly: {status}");
    assert_no_secret_in_files(dir.path(), &secrets, "after the server stopped");
    let text = output.text();
    assert!(
        text.contains("\"listening\""),
        "the captured output should include the listening line: {text}"
    );
    let leaks = secrets.found_in(text.as_bytes());
    assert!(
        leaks.is_empty(),
        "the server printed secrets (stdout or stderr):\n  {}",
        leaks.join("\n  ")
    );
    assert!(
        secrets.0.len() >= 14,
        "expected every kind of secret to be collected, got {}",
        secrets.0.len()
    );
}
