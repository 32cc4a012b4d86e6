//! The admin commands (`gatehouse agents`, `revoke`, `log`, `audit verify`) run as separate
//! processes next to a running `gatehouse serve` on the same data dir, the way a person uses them
//! from a second terminal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gatehouse_e2e::flow::{self, agent_with_tokens};
use gatehouse_e2e::{Server, gatehouse_command, run_cli, token_id};
use serde_json::Value;

// ---- helpers ---------------------------------------------------------------------------------

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs an admin command that must succeed; returns its stdout.
fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = run_cli(dir, args);
    assert!(
        out.status.success(),
        "`gatehouse {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `gatehouse agents --json`, parsed.
fn agents_json(dir: &Path) -> Vec<Value> {
    let text = cli_ok(dir, &["agents", "--json"]);
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("`agents --json` is not JSON ({e}): {text}"));
    v.as_array()
        .unwrap_or_else(|| panic!("`agents --json` must print an array: {text}"))
        .clone()
}

fn agent<'a>(agents: &'a [Value], client_id: &str) -> &'a Value {
    agents
        .iter()
        .find(|a| a["client_id"] == client_id)
        .unwrap_or_else(|| panic!("`agents --json` does not list {client_id}: {agents:?}"))
}

/// `gatehouse log --json ARGS...`, one event per line, parsed.
fn log_json(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["log", "--json"];
    args.extend_from_slice(extra);
    cli_ok(dir, &args)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("`log --json` printed a line that is not JSON ({e}): {l}")
            })
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["id"].as_i64().expect("event id"))
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?"))
        .collect()
}

/// The events of one consent that ends in tokens, in the order they happen.
const CONSENT_TO_TOKENS: [&str; 4] = [
    "consent.requested",
    "consent.approved",
    "code.issued",
    "token.issued",
];

/// Asserts `events` include every kind of [`CONSENT_TO_TOKENS`]; `whose` names them in the message.
fn assert_consent_to_tokens(events: &[Value], whose: &str) {
    let k = kinds(events);
    for kind in CONSENT_TO_TOKENS {
        assert!(k.contains(&kind), "{whose} should include {kind}: {k:?}");
    }
}

// ---- agents ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_json_lists_every_agent_with_its_grants_and_live_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let (busy, at, rt) = agent_with_tokens(&mut server, &http).await;
    let idle = flow::register(&http, &server.issuer, false).await;

    // While the server runs.
    let agents = agents_json(dir.path());
    assert_eq!(agents.len(), 2, "two agents registered: {agents:?}");

    let a = agent(&agents, &busy.client_id);
    assert_eq!(a["auth_method"], "client_secret_basic", "{a}");
    assert!(a["revoked_at"].is_null(), "not revoked: {a}");
    let grants = a["grants"].as_array().expect("grants array");
    assert_eq!(grants.len(), 1, "one grant from the one consent: {a}");
    let live = a["live_tokens"].as_array().expect("live_tokens array");
    let mut live_ids: Vec<&str> = live
        .iter()
        .map(|t| t["id"].as_str().unwrap_or("?"))
        .collect();
    live_ids.sort_unstable();
    let mut expected = vec![token_id(&at), token_id(&rt)];
    expected.sort();
    assert_eq!(
        live_ids, expected,
        "live_tokens must be the access and refresh token the agent holds, by id: {a}"
    );

    let b = agent(&agents, &idle.client_id);
    assert_eq!(b["auth_method"], "none", "{b}");
    assert_eq!(b["grants"], Value::Array(vec![]), "no grants yet: {b}");
    assert_eq!(b["live_tokens"], Value::Array(vec![]), "no tokens yet: {b}");

    // The listing names tokens by id and never shows a secret or a hash of one.
    let text = cli_ok(dir.path(), &["agents", "--json"]);
    let secret = busy.client_secret.as_deref().expect("client secret");
    for (what, s) in [
        ("access token", &at[..]),
        ("refresh token", &rt[..]),
        ("client secret", secret),
    ] {
        assert!(!text.contains(s), "`agents --json` shows the {what}");
    }
    assert!(
        !text.contains("secret_hash") && !text.contains("token_hash"),
        "{text}"
    );

    // The table names both agents too.
    let table = cli_ok(dir.path(), &["agents"]);
    assert!(
        table.contains(&busy.client_id) && table.contains(&idle.client_id),
        "`gatehouse agents` should list both agents: {table}"
    );
    server.stop();
}

// ---- revoke ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_agent_while_the_server_runs_kills_its_tokens_and_authorization() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let issuer = server.issuer.clone();
    let http = flow::http();
    let (victim, at, rt) = agent_with_tokens(&mut server, &http).await;
    let (bystander, other_at, _) = agent_with_tokens(&mut server, &http).await;
    let intro = flow::introspect(&http, &issuer, &victim, &at).await;
    assert_eq!(intro["active"], true, "before revocation: {intro}");

    let out = cli_ok(dir.path(), &["revoke", &victim.client_id, "--json"]);
    let summary: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("`revoke --json` is not JSON ({e}): {out}"));
    assert_eq!(summary["client_id"], victim.client_id.as_str(), "{summary}");
    assert_eq!(summary["grants"], 1, "one grant revoked: {summary}");
    assert_eq!(
        summary["tokens"], 2,
        "access and refresh token revoked: {summary}"
    );
    assert_eq!(
        summary["remembered_consents"], 1,
        "the remembered consent is revoked: {summary}"
    );

    // Its tokens are dead at once: introspection no longer reports them active (the revoked
    // client cannot even authenticate any more), and its refresh token is refused.
    let res = flow::client_post(&http, &issuer, "/introspect", &victim, &[("token", &at)])
        .send()
        .await
        .expect("POST /introspect");
    let status = res.status();
    let body: Value = res.json().await.expect("JSON");
    assert!(
        (status == 200 && body == serde_json::json!({ "active": false }))
            || (status == 401 && body["error"] == "invalid_client"),
        "a revoked agent's access token must not be active: {status} {body}"
    );
    let res = flow::refresh(&http, &issuer, &victim, &rt).await;
    let status = res.status();
    let body: Value = res.json().await.expect("JSON");
    assert!(
        matches!(
            body["error"].as_str(),
            Some("invalid_grant" | "invalid_client")
        ) && (status == 400 || status == 401),
        "a revoked agent's refresh must fail with invalid_grant or invalid_client: {status} {body}"
    );

    // It cannot start a new authorization: a 400 page, never a redirect (not even with its
    // remembered consent).
    let (_, challenge) = gatehouse_e2e::pkce_pair();
    let res = flow::authorize(&http, &issuer, &victim, &challenge, "st").await;
    assert_eq!(
        res.status(),
        400,
        "/authorize for a revoked agent must answer a 400 page: {:?}",
        res.headers().get("location")
    );
    assert!(res.headers().get("location").is_none(), "no redirect");

    // The listing and the audit log show it.
    let agents = agents_json(dir.path());
    let v = agent(&agents, &victim.client_id);
    assert!(v["revoked_at"].is_i64(), "revoked_at is set: {v}");
    assert_eq!(
        v["live_tokens"],
        Value::Array(vec![]),
        "no live tokens: {v}"
    );
    let events = log_json(dir.path(), &["--agent", &victim.client_id]);
    let revoked = events
        .iter()
        .find(|e| e["kind"] == "agent.revoked")
        .unwrap_or_else(|| panic!("no agent.revoked event: {:?}", kinds(&events)));
    assert_eq!(revoked["client_id"], victim.client_id.as_str());

    // Other agents are untouched.
    let intro = flow::introspect(&http, &issuer, &bystander, &other_at).await;
    assert_eq!(
        intro["active"], true,
        "another agent's token stays active: {intro}"
    );

    // A second revocation says it was already done.
    let again = run_cli(dir.path(), &["revoke", &victim.client_id]);
    assert!(!again.status.success(), "revoking twice should fail");
    assert!(
        stderr(&again).contains("already revoked"),
        "revoking twice should say it was already revoked: {}",
        stderr(&again)
    );
    server.stop();
    let verify = cli_ok(dir.path(), &["audit", "verify"]);
    assert!(verify.starts_with("ok"), "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_unknown_agent_fails_and_says_how_to_find_the_right_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    flow::register(&flow::http(), &server.issuer, false).await;
    server.stop();
    let before = log_json(dir.path(), &[]).len();

    let out = run_cli(dir.path(), &["revoke", "agt_does_not_exist"]);
    assert!(!out.status.success(), "revoking an unknown agent must fail");
    let err = stderr(&out);
    assert!(
        err.contains("agt_does_not_exist") && err.contains("gatehouse agents"),
        "the message should name the id and point at `gatehouse agents`: {err}"
    );
    assert_eq!(
        log_json(dir.path(), &[]).len(),
        before,
        "a failed revocation writes nothing"
    );
}

// ---- log -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_for_one_agent_shows_only_its_events_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let (a, _, a_rt) = agent_with_tokens(&mut server, &http).await;
    let (b, _, _) = agent_with_tokens(&mut server, &http).await;
    // Interleave: more activity for A after B's.
    flow::tokens(flow::refresh(&http, &server.issuer, &a, &a_rt).await).await;

    let events = log_json(dir.path(), &["--agent", &a.client_id]);
    assert!(
        events
            .iter()
            .all(|e| e["client_id"] == a.client_id.as_str()),
        "`log --agent A` must show A's events only: {events:?}"
    );
    let got = ids(&events);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "events must be oldest first: {got:?}"
    );
    let k = kinds(&events);
    assert_eq!(k.first(), Some(&"agent.registered"), "{k:?}");
    assert_eq!(k.last(), Some(&"token.refreshed"), "{k:?}");
    assert_consent_to_tokens(&events, "A's story");

    // The whole log has both agents; `--limit` keeps the newest N, still oldest first.
    let all = log_json(dir.path(), &[]);
    assert!(all.iter().any(|e| e["client_id"] == b.client_id.as_str()));
    let last_two = log_json(dir.path(), &["--agent", &a.client_id, "--limit", "2"]);
    assert_eq!(ids(&last_two), got[got.len() - 2..].to_vec(), "--limit 2");
    server.stop();
}

/// `gatehouse log --follow` running as a child; killed when dropped.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(dir: &Path) -> Self {
        let mut child = gatehouse_command(dir, &["log", "--follow", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gatehouse log --follow");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// Reads events until one matches, within `limit`; returns every event read.
    fn until(&self, limit: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let ev: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                        panic!(
                            "`log --follow --json` printed a line that is not JSON ({e}): {line}"
                        )
                    });
                    let hit = pred(&ev);
                    seen.push(ev);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "`log --follow` did not print {what} within {limit:?}; it printed {:?}",
                    kinds(&seen)
                ),
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_follow_prints_events_from_the_running_server_within_two_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let first = flow::register(&http, &server.issuer, false).await;

    let follower = Follower::start(dir.path());
    // It starts with the history: the first registration.
    let history = follower.until(Duration::from_secs(10), "the existing history", |e| {
        e["kind"] == "agent.registered" && e["client_id"] == first.client_id.as_str()
    });
    let mut last_id = history.last().and_then(|e| e["id"].as_i64()).expect("id");

    // New activity in the server process shows up in the follower within about two seconds.
    let started = Instant::now();
    let second = flow::register(&http, &server.issuer, true).await;
    let got = follower.until(Duration::from_secs(2), "the new registration", |e| {
        e["kind"] == "agent.registered" && e["client_id"] == second.client_id.as_str()
    });
    eprintln!(
        "log --follow showed a new registration after {:?}",
        started.elapsed()
    );

    let (code, verifier) = flow::consent_code(&mut server, &http, &second, None).await;
    flow::tokens(flow::exchange(&http, &server.issuer, &second, &code, &verifier).await).await;
    let more = follower.until(Duration::from_secs(2), "token.issued", |e| {
        e["kind"] == "token.issued" && e["client_id"] == second.client_id.as_str()
    });

    // Every event once, in order, with nothing skipped.
    let all: Vec<Value> = got.into_iter().chain(more).collect();
    for id in ids(&all) {
        assert_eq!(
            id,
            last_id + 1,
            "`log --follow` skipped or repeated events: {:?}",
            ids(&all)
        );
        last_id = id;
    }
    assert_consent_to_tokens(&all, "what the follower shows");
    drop(follower);
    server.stop();
}

// ---- no data yet -----------------------------------------------------------------------------

#[test]
fn admin_commands_on_an_empty_data_dir_fail_and_say_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("not-created");
    for data_dir in [dir.path(), missing.as_path()] {
        for args in [
            &["agents"][..],
            &["agents", "--json"],
            &["log"],
            &["log", "--json", "--agent", "agt_x"],
            &["revoke", "agt_x"],
            &["audit", "verify"],
        ] {
            let out = run_cli(data_dir, args);
            let err = stderr(&out);
            assert!(
                !out.status.success(),
                "`gatehouse {}` on an empty data dir must fail, printed: {}",
                args.join(" "),
                stdout(&out)
            );
            assert!(
                err.contains("gatehouse serve") && err.contains("--data-dir"),
                "`gatehouse {}` on an empty data dir should say to start `gatehouse serve` or \
                 pass --data-dir: {err}",
                args.join(" ")
            );
            assert!(
                err.contains(&data_dir.display().to_string()),
                "the message should name the directory it looked in: {err}"
            );
        }
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        left.is_empty(),
        "admin commands must not create anything in a data dir without a database: {left:?}"
    );
}
