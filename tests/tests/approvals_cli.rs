//! `gatehouse approvals` (pending requests and their history) and `gatehouse demo-agent` (the
//! newcomer's tour), run as separate processes next to a real `gatehouse serve --approver jsonl`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use gatehouse_e2e::flow::{self, Client};
use gatehouse_e2e::{Server, gatehouse_command, pkce_pair, run_cli};
use serde_json::{Value, json};

fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = run_cli(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`gatehouse {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn approvals_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["approvals", "--json"];
    args.extend_from_slice(extra);
    let text = cli_ok(dir, &args);
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("`approvals --json` is not JSON ({e}): {text}"))
        .as_array()
        .unwrap_or_else(|| panic!("`approvals --json` must print an array: {text}"))
        .clone()
}

/// Files a consent approval for `client` and returns its id, once the approver has seen it.
async fn file_consent(server: &mut Server, http: &reqwest::Client, client: &Client) -> String {
    let (_verifier, challenge) = pkce_pair();
    let res = flow::authorize(http, &server.issuer, client, &challenge, "st").await;
    let id = flow::approval_id(&flow::location(&res));
    server.expect_event_matching("approval_requested", |v| v["id"] == id.as_str());
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_lists_pending_approved_and_expired_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let http = flow::http();

    // An approval nobody answers expires (a one-time denial decided by the clock).
    let mut server = Server::start(dir.path(), &["--approval-timeout", "1"]);
    let client = flow::register(&http, &server.issuer, true).await;
    let expired = file_consent(&mut server, &http, &client).await;
    let ended = server.expect_event_matching("approval_decided", |v| v["id"] == expired.as_str());
    assert_eq!(ended["decision"], "expired");
    server.stop();

    let mut server = Server::start(dir.path(), &[]);
    let approved = file_consent(&mut server, &http, &client).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.decide(json!({ "approve": approved, "remember": "once" }));
    server.expect_event_matching("approval_decided", |v| v["id"] == approved.as_str());
    let pending = file_consent(&mut server, &http, &client).await;

    let list = approvals_json(dir.path(), &[]);
    let ids: Vec<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [&pending, &approved, &expired],
        "newest first: {list:#?}"
    );

    let p = &list[0];
    assert_eq!(p["status"], "pending");
    assert_eq!(p["kind"], "consent");
    assert_eq!(p["client_id"], client.client_id.as_str());
    assert_eq!(p["client_name"], "e2e client_secret_basic agent");
    assert_eq!(p["channel"], Value::Null);
    assert_eq!(p["decided_after_ms"], Value::Null);
    assert!(p["expires_at"].as_i64().unwrap() > p["created_at"].as_i64().unwrap());

    let a = &list[1];
    assert_eq!(a["status"], "approved");
    assert_eq!(a["channel"], "jsonl");
    assert_eq!(a["remember"], "once");
    let took = a["decided_after_ms"].as_i64().unwrap();
    assert!((50..60_000).contains(&took), "decided after {took} ms");
    assert_eq!(
        a["decided_at"].as_i64().unwrap() - a["created_at"].as_i64().unwrap(),
        took
    );

    let e = &list[2];
    assert_eq!(e["status"], "expired");
    assert_eq!(e["channel"], "timeout");
    assert!(e["decided_after_ms"].as_i64().unwrap() >= 1000, "{e}");

    // --pending and --limit narrow the list; the table says the same in words.
    let only = approvals_json(dir.path(), &["--pending"]);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["id"], pending.as_str());
    assert_eq!(approvals_json(dir.path(), &["--limit", "2"]).len(), 2);
    let table = cli_ok(dir.path(), &["approvals"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("ID "), "{table}");
    assert!(
        lines[1].contains("pending, ") && lines[1].contains(" left"),
        "{table}"
    );
    assert!(
        lines[2].contains(" approved ") && lines[2].contains(" jsonl "),
        "{table}"
    );
    assert!(
        lines[3].contains(" expired ") && lines[3].contains(" timeout "),
        "{table}"
    );

    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_says_so_when_there_is_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(
        cli_ok(dir.path(), &["approvals"]).trim(),
        "No agent has asked for anything yet."
    );
    assert_eq!(
        cli_ok(dir.path(), &["approvals", "--pending"]).trim(),
        "Nothing is waiting for a decision."
    );
    assert_eq!(approvals_json(dir.path(), &[]), Vec::<Value>::new());
    server.stop();
}

/// Runs `gatehouse demo-agent` against a jsonl server, approving what it asks on the server's
/// stdin, and returns its whole output and whether it succeeded.
fn run_demo(server: &mut Server, dir: &Path, approve_action: bool) -> (bool, String) {
    let mut child = gatehouse_command(dir, &["demo-agent", "--issuer", &server.issuer])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo-agent");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let consent = server.expect_event("approval_requested");
    assert_eq!(consent["kind"], "consent");
    assert_eq!(consent["client_name"], "Demo agent");
    assert_eq!(consent["verified"], false);
    assert_eq!(consent["scopes"], json!(["mail:read", "mail:send"]));
    server.decide(json!({ "approve": consent["id"] }));

    let action = server.expect_event_matching("approval_requested", |v| v["kind"] == "action");
    assert_eq!(action["via"], "ciba");
    assert_eq!(action["binding_message"], "Send Q3 budget deck to Alex");
    assert_eq!(
        action["authorization_details"][0]["recipients"],
        json!(["alex@contractor.example"])
    );
    assert!(
        action["summary"].as_array().is_some_and(|s| !s.is_empty()),
        "{action}"
    );
    if approve_action {
        server.decide(json!({ "approve": action["id"] }));
    } else {
        server.decide(json!({ "deny": action["id"] }));
    }

    let status = gatehouse_e2e::wait_for_exit(&mut child, Duration::from_secs(60)).expect("wait");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        text.push_str(&line);
        text.push('\n');
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let Some(status) = status else {
        panic!("demo-agent did not finish in 60 s:\n{text}{err}");
    };
    (status.success(), format!("{text}{err}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_agent_narrates_consent_and_an_approved_email() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (ok, out) = run_demo(&mut server, dir.path(), true);
    assert!(ok, "demo-agent failed:\n{out}");
    for expected in [
        "Step 1: find Gatehouse and register",
        "Registered itself (RFC 7591) as \"Demo agent\"",
        "Step 2: ask your consent",
        "approve it in the terminal running `gatehouse serve`",
        "Exchanged the code",
        "Step 3: ask approval to email the Q3 budget deck to Alex",
        "\"Send Q3 budget deck to Alex\"",
        "approved: the next poll returned an access token gth_at_",
        "Step 4: check what the approved token allows",
        "The token carries exactly the details you approved",
        "already inactive",
        "did not send any email",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_agent_says_when_the_email_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (ok, out) = run_demo(&mut server, dir.path(), false);
    assert!(!ok, "a denied tour exits non-zero:\n{out}");
    assert!(out.contains("denied: you said no"), "{out}");
    assert!(!out.contains("Step 4"), "{out}");
    server.stop();
}
