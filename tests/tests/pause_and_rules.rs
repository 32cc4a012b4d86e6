//! `gatehouse pause` / `resume` and `gatehouse rules` as separate processes next to a running
//! `gatehouse serve`: pausing stops /authorize, every token grant and introspection on the very
//! next request, resuming restores them, and rules round-trip through add, list and rm.

use std::path::Path;
use std::process::Output;

use gatehouse_e2e::flow::{self, agent_with_tokens};
use gatehouse_e2e::reply::send;
use gatehouse_e2e::{Server, pkce_pair, run_cli};
use reqwest::StatusCode;
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs an admin command that must succeed; returns its stdout.
fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = run_cli(dir, args);
    assert!(
        out.status.success(),
        "`gatehouse {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs an admin command with `--json` that must succeed; returns its JSON.
fn cli_json(dir: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = cli_ok(dir, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("`{args:?}` is not JSON ({e}): {out}"))
}

fn cli_fails(dir: &Path, args: &[&str]) -> Output {
    let out = run_cli(dir, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "`gatehouse {}` should exit 1:\nstdout: {}\nstderr: {}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_every_agent_while_serve_runs_and_resume_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &[]);
    let issuer = server.issuer.clone();
    let http = flow::http();
    let (client, at, rt) = agent_with_tokens(&mut server, &http).await;
    assert_eq!(
        flow::introspect(&http, &issuer, &client, &at).await["active"],
        true
    );

    let paused = cli_json(dir.path(), &["pause"]);
    assert_eq!(
        paused,
        serde_json::json!({ "paused": true, "changed": true })
    );
    let again = cli_ok(dir.path(), &["pause"]);
    assert!(again.contains("already paused"), "{again}");

    // /authorize: straight back to the client with access_denied; nobody is asked.
    let (_, challenge) = pkce_pair();
    let res = flow::authorize(&http, &issuer, &client, &challenge, "st-paused").await;
    let to = flow::location(&res);
    assert!(
        to.starts_with(&client.redirect_uri),
        "redirects to the client: {to}"
    );
    assert_eq!(
        flow::query_param(&to, "error").as_deref(),
        Some("access_denied")
    );
    assert!(
        flow::query_param(&to, "error_description").is_some_and(|d| d.contains("paused")),
        "{to}"
    );
    assert_eq!(
        flow::query_param(&to, "state").as_deref(),
        Some("st-paused")
    );

    // The token endpoint refuses even a refresh.
    let reply = send(
        "refresh while paused",
        flow::client_post(
            &http,
            &issuer,
            "/token",
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        ),
    )
    .await;
    let body = reply.expect_json(StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "access_denied", "{body}");
    assert!(body.get("access_token").is_none());

    // Introspection: every token is inactive.
    assert_eq!(
        flow::introspect(&http, &issuer, &client, &at).await,
        serde_json::json!({ "active": false })
    );

    let resumed = cli_json(dir.path(), &["resume"]);
    assert_eq!(
        resumed,
        serde_json::json!({ "paused": false, "changed": true })
    );
    assert_eq!(
        flow::introspect(&http, &issuer, &client, &at).await["active"],
        true
    );
    let renewed = flow::tokens(flow::refresh(&http, &issuer, &client, &rt).await).await;
    assert!(renewed["refresh_token"].is_string(), "{renewed}");
    // The consent is remembered, so /authorize hands out a code again without asking.
    flow::remembered_code(&http, &issuer, &client).await;

    // Both switches are in the audit log.
    let log = cli_ok(dir.path(), &["log", "--json", "-n", "500"]);
    let kinds: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect();
    assert!(kinds.iter().any(|k| k == "agents.paused"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "agents.resumed"), "{kinds:?}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_round_trip_through_add_list_and_rm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let http = flow::http();
    let client = flow::register(&http, &server.issuer, true).await;

    let empty = cli_json(dir.path(), &["rules", "list"]);
    assert_eq!(empty, serde_json::json!([]));
    let none = cli_ok(dir.path(), &["rules", "list"]);
    assert!(none.starts_with("No rules"), "{none}");

    let deny = cli_json(
        dir.path(),
        &[
            "rules",
            "add",
            "--effect",
            "deny",
            "--action",
            "data_delete",
            "--resource",
            "db/prod-*",
        ],
    );
    assert_eq!(deny["effect"], "deny");
    assert_eq!(deny["agent"], "*");
    assert_eq!(deny["lifetime"], "always");
    assert!(deny["expires_at"].is_null());
    let allow = cli_json(
        dir.path(),
        &[
            "rules",
            "add",
            "--effect",
            "allow",
            "--agent",
            &client.client_id,
            "--action",
            "api_request",
            "--resource",
            "https://api.github.com/*",
            "--lifetime",
            "8h",
        ],
    );
    let (created, expires) = (
        allow["created_at"].as_i64().unwrap(),
        allow["expires_at"].as_i64().unwrap(),
    );
    assert_eq!(expires - created, 8 * 3_600_000);

    // Refusals, each with a reason.
    let out = cli_fails(
        dir.path(),
        &["rules", "add", "--effect", "allow", "--lifetime", "session"],
    );
    assert!(
        text(&out.stderr).contains("session rule"),
        "{}",
        text(&out.stderr)
    );
    let out = cli_fails(
        dir.path(),
        &["rules", "add", "--effect", "allow", "--agent", "agt_nobody"],
    );
    assert!(
        text(&out.stderr).contains("agt_nobody"),
        "{}",
        text(&out.stderr)
    );
    let usage = run_cli(dir.path(), &["rules", "add", "--effect", "maybe"]);
    assert_eq!(usage.status.code(), Some(2), "a usage error");

    let listed = cli_json(dir.path(), &["rules", "list"]);
    let ids: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&deny["id"], &allow["id"]]);
    assert_eq!(listed[1]["hits"], 0);
    assert_eq!(listed[1]["expired"], false);
    let table = cli_ok(dir.path(), &["rules", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("db/prod-*"), "{table}");

    let id = deny["id"].to_string();
    let removed = cli_json(dir.path(), &["rules", "rm", &id]);
    assert_eq!(removed["id"], deny["id"]);
    let out = cli_fails(dir.path(), &["rules", "rm", &id]);
    assert!(
        text(&out.stderr).contains(&format!("no rule {id}")),
        "{}",
        text(&out.stderr)
    );
    let listed = cli_json(dir.path(), &["rules", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    let log = cli_ok(dir.path(), &["log", "--json", "-n", "500"]);
    assert_eq!(log.matches("\"rule.created\"").count(), 2, "{log}");
    assert_eq!(log.matches("\"rule.deleted\"").count(), 1, "{log}");
    server.stop();
}
