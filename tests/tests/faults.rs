//! Fault tests against the real `gatehouse serve`: a database locked by another process, an audit
//! log that cannot be written, `kill -9` in the middle of a burst of token requests, and a
//! tampered audit row. Each one pins the rule from the design: fail closed with
//! `temporarily_unavailable` and change nothing; lose nothing a client was handed; detect and name
//! the tampered row.
//!
//! A read-only database cannot be simulated with `chmod`: the tests run as root, and root writes
//! through file modes. The audit-failure test uses a trigger that makes every audit insert fail
//! instead, which exercises the same path (the event cannot be written, so the request fails).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_e2e::flow::{self, Client};
use gatehouse_e2e::reply::Reply;
use gatehouse_e2e::{Server, pkce_pair, run_cli, token_id};
use reqwest::StatusCode;
use rusqlite::Connection;
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---- helpers ---------------------------------------------------------------------------------

/// A raw connection to the server's database, as another process would open it.
fn raw_db(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("gatehouse.db")).expect("open gatehouse.db");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c
}

/// Row counts of every table a request could change, plus how many codes were used.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    agents: i64,
    grants: i64,
    codes: i64,
    codes_used: i64,
    tokens: i64,
    tokens_rotated_or_revoked: i64,
    approvals: i64,
    consents: i64,
    events: i64,
}

fn snapshot(dir: &Path) -> Snapshot {
    let c = raw_db(dir);
    let n = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).expect(sql) };
    Snapshot {
        agents: n("SELECT COUNT(*) FROM agents"),
        grants: n("SELECT COUNT(*) FROM grants"),
        codes: n("SELECT COUNT(*) FROM auth_codes"),
        codes_used: n("SELECT COUNT(*) FROM auth_codes WHERE used_at IS NOT NULL"),
        tokens: n("SELECT COUNT(*) FROM tokens"),
        tokens_rotated_or_revoked: n(
            "SELECT COUNT(*) FROM tokens WHERE rotated_at IS NOT NULL OR revoked_at IS NOT NULL",
        ),
        approvals: n("SELECT COUNT(*) FROM approvals"),
        consents: n("SELECT COUNT(*) FROM consents"),
        events: n("SELECT COUNT(*) FROM events"),
    }
}

/// Whether the code with this plaintext is stored and unused.
fn code_is_unused(dir: &Path, code: &str) -> bool {
    let hash = Sha256::digest(code.as_bytes()).to_vec();
    raw_db(dir)
        .query_row(
            "SELECT used_at IS NULL FROM auth_codes WHERE code_hash = ?1",
            [hash],
            |r| r.get(0),
        )
        .expect("the code is stored")
}

/// After refused requests: the database must be as `before` (`rule` is the message), and the
/// code whose exchange was refused must still be unused.
fn assert_unchanged(dir: &Path, before: &Snapshot, refused_code: &str, rule: &str) {
    assert_eq!(&snapshot(dir), before, "{rule}");
    assert!(
        code_is_unused(dir, refused_code),
        "the code must still be unused after the refused exchange"
    );
}

/// Asserts an answer is `503 {"error":"temporarily_unavailable"}` with `Cache-Control: no-store`.
async fn assert_unavailable(what: &str, res: reqwest::Response) {
    Reply::read(what, res)
        .await
        .assert_oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
}

/// Token ids (`access_token_id`, `refresh_token_id`) of every issuance event in the log.
fn issued_token_ids(dir: &Path) -> HashSet<String> {
    let c = raw_db(dir);
    let mut stmt = c
        .prepare("SELECT detail FROM events WHERE kind IN ('token.issued', 'token.refreshed')")
        .expect("prepare");
    let details = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|d| d.expect("row"))
        .collect::<Vec<_>>();
    let mut ids = HashSet::new();
    for d in details {
        let v: Value = serde_json::from_str(&d).expect("event detail is JSON");
        for key in ["access_token_id", "refresh_token_id"] {
            if let Some(id) = v[key].as_str() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

fn cli_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `gatehouse audit verify` must pass on `dir`; `when` names the moment in the message.
fn assert_audit_verifies(dir: &Path, when: &str) {
    let out = run_cli(dir, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "`gatehouse audit verify` must pass {when}: {}",
        cli_output(&out)
    );
}

/// `gatehouse audit verify` must fail on `dir` (`when` says why in the message); returns all it
/// printed.
fn audit_verify_failure(dir: &Path, when: &str) -> String {
    let out = run_cli(dir, &["audit", "verify"]);
    let text = cli_output(&out);
    assert!(
        !out.status.success(),
        "`audit verify` must fail {when}, but exited 0: {text}"
    );
    text
}

/// Drops the append-only trigger `trigger` and runs `sql` with event `id` as `?1`; returns how
/// many rows it changed. `what` names the change in the message if it fails.
fn tamper(dir: &Path, trigger: &str, sql: &str, id: i64, what: &str) -> usize {
    let c = raw_db(dir);
    c.execute_batch(&format!("DROP TRIGGER {trigger}"))
        .expect("drop the append-only trigger");
    c.execute(sql, [id]).expect(what)
}

// ---- the database is locked by another process ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &["--busy-timeout-ms", "300"]);
    let http = flow::http();
    let client = flow::register(&http, &server.issuer, true).await;
    let (code, verifier) = flow::consent_code(&mut server, &http, &client, None).await;
    let before = snapshot(dir.path());

    // Another process takes the write lock and holds it past the server's busy timeout.
    let locker = raw_db(dir.path());
    locker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");

    let res = flow::try_register(&http, &server.issuer, true).await;
    assert_unavailable("POST /register with the database locked", res).await;
    let res = flow::exchange(&http, &server.issuer, &client, &code, &verifier).await;
    assert_unavailable("code exchange with the database locked", res).await;

    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);

    assert_unchanged(
        dir.path(),
        &before,
        &code,
        "requests refused while the database was locked must not change anything",
    );
    let tokens =
        flow::tokens(flow::exchange(&http, &server.issuer, &client, &code, &verifier).await).await;
    assert!(
        tokens["refresh_token"].is_string(),
        "once the lock is gone the same code exchanges normally: {tokens}"
    );
    // Registration works again too.
    flow::register(&http, &server.issuer, false).await;
    server.stop();
}

// ---- the audit log cannot be written ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_audit_write_answers_503_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let (client, _, refresh_token) = flow::agent_with_tokens(&mut server, &http).await;
    // A second, unused code from the remembered consent.
    let (code2, verifier2) = flow::remembered_code(&http, &server.issuer, &client).await;
    let before = snapshot(dir.path());

    raw_db(dir.path())
        .execute_batch(
            "CREATE TRIGGER fail_audit BEFORE INSERT ON events \
             BEGIN SELECT RAISE(FAIL, 'simulated disk failure'); END;",
        )
        .expect("install the failing trigger");

    let res = flow::try_register(&http, &server.issuer, false).await;
    assert_unavailable("POST /register when the audit event cannot be written", res).await;
    let res = flow::exchange(&http, &server.issuer, &client, &code2, &verifier2).await;
    assert_unavailable("code exchange when the audit event cannot be written", res).await;
    let res = flow::refresh(&http, &server.issuer, &client, &refresh_token).await;
    assert_unavailable("refresh when the audit event cannot be written", res).await;

    assert_unchanged(
        dir.path(),
        &before,
        &code2,
        "nothing may change when the audit event cannot be written",
    );

    raw_db(dir.path())
        .execute_batch("DROP TRIGGER fail_audit")
        .expect("drop the trigger");
    flow::tokens(flow::refresh(&http, &server.issuer, &client, &refresh_token).await).await;
    flow::tokens(flow::exchange(&http, &server.issuer, &client, &code2, &verifier2).await).await;
    server.stop();
    assert_audit_verifies(
        dir.path(),
        "after the refused writes (the chain must be intact)",
    );
}

// ---- kill -9 in the middle of a burst ---------------------------------------------------------

/// What the burst's clients saw.
#[derive(Default)]
struct BurstLog {
    /// Every token a client received in a complete 200 answer: (how it was obtained, token).
    received: Vec<(&'static str, String)>,
    /// Answers that should never happen (an HTTP error while the server was up).
    anomalies: Vec<String>,
}

/// One agent task: remembered-consent code, exchange, and every other round a refresh, until the
/// server goes away (a transport error) or the deadline passes.
async fn burst_worker(
    http: reqwest::Client,
    issuer: String,
    client: Client,
    log: Arc<Mutex<BurstLog>>,
    deadline: Instant,
) {
    let mut round = 0u32;
    while Instant::now() < deadline {
        round += 1;
        let (verifier, challenge) = pkce_pair();
        let authorize = flow::authorize_request(&http, &issuer, &client, &challenge, "burst");
        let Ok(res) = authorize.send().await else {
            return;
        };
        let code = res
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| flow::query_param(l, "code"));
        let Some(code) = code else {
            log.lock().expect("log").anomalies.push(format!(
                "/authorize answered {} without a code",
                res.status()
            ));
            return;
        };
        let form = flow::exchange_form(&client, &code, &verifier);
        let exchange = flow::client_post(&http, &issuer, "/token", &client, &form);
        let Some(body) = token_round(exchange, "code exchange", &log).await else {
            return;
        };
        if round.is_multiple_of(2) {
            let rt = body["refresh_token"].as_str().unwrap_or_default();
            let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
            let refresh = flow::client_post(&http, &issuer, "/token", &client, &form);
            if token_round(refresh, "refresh", &log).await.is_none() {
                return;
            }
        }
    }
}

/// Sends one token request of the burst (`via` says which) and logs the tokens of a 200 answer,
/// which it returns. `None` when the worker should stop: the server went away (no answer, or a
/// body cut off by the kill, which was never received), or it answered an error (an anomaly).
async fn token_round(
    req: reqwest::RequestBuilder,
    via: &'static str,
    log: &Mutex<BurstLog>,
) -> Option<Value> {
    let res = req.send().await.ok()?;
    let status = res.status();
    let body = res.json::<Value>().await.ok()?;
    let mut log = log.lock().expect("log");
    if status != 200 {
        log.anomalies
            .push(format!("{via} answered {status}: {body}"));
        return None;
    }
    for key in ["access_token", "refresh_token"] {
        if let Some(t) = body[key].as_str() {
            log.received.push((via, t.to_owned()));
        }
    }
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_loses_no_issued_token_and_keeps_the_log_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let client = flow::register(&http, &server.issuer, true).await;
    // Remembered consent, so the burst needs no prompts.
    let (code, verifier) = flow::consent_code(&mut server, &http, &client, Some("always")).await;
    flow::tokens(flow::exchange(&http, &server.issuer, &client, &code, &verifier).await).await;

    let log = Arc::new(Mutex::new(BurstLog::default()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let workers: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(burst_worker(
                http.clone(),
                server.issuer.clone(),
                client.clone(),
                log.clone(),
                deadline,
            ))
        })
        .collect();

    // Let the burst run for about a second and a half, and until it has produced tokens.
    let started = Instant::now();
    loop {
        let n = log.lock().expect("log").received.len();
        if started.elapsed() >= Duration::from_millis(1500) && n >= 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the burst produced only {n} tokens in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill9();
    for w in workers {
        w.await.expect("burst worker panicked");
    }
    let log = std::mem::take(&mut *log.lock().expect("log"));
    assert!(
        log.anomalies.is_empty(),
        "requests failed while the server was up: {:?}",
        log.anomalies
    );
    assert!(!log.received.is_empty(), "the burst received no tokens");
    eprintln!(
        "kill -9 after {:?}: clients had received {} tokens",
        started.elapsed(),
        log.received.len()
    );

    // The lock died with the process: the same data dir serves again.
    let server = Server::try_start(dir.path(), &[]).unwrap_or_else(|stderr| {
        panic!("restarting on the same data dir after kill -9 failed: {stderr}")
    });

    let integrity: String = raw_db(dir.path())
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok", "PRAGMA integrity_check after kill -9");

    assert_audit_verifies(dir.path(), "after kill -9");

    let recorded = issued_token_ids(dir.path());
    let missing: Vec<String> = log
        .received
        .iter()
        .filter(|(_, t)| !recorded.contains(&token_id(t)))
        .map(|(via, t)| format!("{}… from {via} (id {})", &t[..7], token_id(t)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of the {} tokens clients received have no issuance event: {missing:?}",
        missing.len(),
        log.received.len()
    );

    // And it works again: the remembered consent survives, a new exchange succeeds.
    let (code, verifier) = flow::remembered_code(&http, &server.issuer, &client).await;
    flow::tokens(flow::exchange(&http, &server.issuer, &client, &code, &verifier).await).await;
    server.stop();
}

// ---- tampering with the audit log -------------------------------------------------------------

/// A server that did some work and stopped: a few agents, a consent, tokens. Returns how many
/// events it wrote.
async fn some_history(dir: &Path) -> i64 {
    let mut server = Server::start(dir, &[]);
    let http = flow::http();
    let client = flow::register(&http, &server.issuer, true).await;
    flow::register(&http, &server.issuer, false).await;
    let (code, verifier) = flow::consent_code(&mut server, &http, &client, None).await;
    let t =
        flow::tokens(flow::exchange(&http, &server.issuer, &client, &code, &verifier).await).await;
    let rt = t["refresh_token"].as_str().expect("refresh_token");
    flow::tokens(flow::refresh(&http, &server.issuer, &client, rt).await).await;
    server.stop();
    raw_db(dir)
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count events")
}

/// Whether `text` names event `id` (as a whole number, not as part of a longer one).
fn names_id(text: &str, id: i64) -> bool {
    let id = id.to_string();
    text.match_indices(&id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_an_edited_event_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = some_history(dir.path()).await;
    assert!(events >= 6, "expected a few events, found {events}");

    assert_audit_verifies(dir.path(), "on an untouched log");

    let tampered = events / 2;
    let changed = tamper(
        dir.path(),
        "events_are_append_only_u",
        "UPDATE events SET detail = '{\"tampered\":true}' WHERE id = ?1",
        tampered,
        "edit one event",
    );
    assert_eq!(changed, 1);

    let text = audit_verify_failure(dir.path(), "on a tampered log");
    assert!(
        names_id(&text, tampered),
        "`audit verify` must name the edited event {tampered}: {text}"
    );
    for other in (1..=events).filter(|i| *i != tampered) {
        assert!(
            !text.contains(&format!("event {other}")) && !text.contains(&format!("#{other}")),
            "`audit verify` names event {other}, but only {tampered} was edited: {text}"
        );
    }

    let out = run_cli(dir.path(), &["audit", "verify", "--json"]);
    assert!(
        !out.status.success(),
        "`audit verify --json` must fail on a tampered log too"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("`audit verify --json` must print one JSON document ({e}): {stdout}")
    });
    assert_eq!(
        json["first_bad"]["id"], tampered,
        "`audit verify --json` must name event {tampered} as the first bad row: {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_a_deleted_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = some_history(dir.path()).await;
    let deleted = events / 2;
    tamper(
        dir.path(),
        "events_are_append_only_d",
        "DELETE FROM events WHERE id = ?1",
        deleted,
        "delete one event",
    );

    let text = audit_verify_failure(dir.path(), "when an event was deleted");
    assert!(
        names_id(&text, deleted) || names_id(&text, deleted + 1),
        "`audit verify` must point at the gap after event {}: {text}",
        deleted - 1
    );
}
