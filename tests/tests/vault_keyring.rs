//! `gatehouse connections add|list|rm` against the real OS keyring (gnome-keyring in the headless
//! D-Bus session `scripts/test.sh` starts), and with no keyring at all (a sealed vault). The
//! secret must land in the keyring and nowhere in the data dir (database, WAL, shm).

use std::path::Path;
use std::process::Command;

use gatehouse_e2e::vault::{add, assert_not_in_data_dir, keyring_session, random_hex, text};
use gatehouse_e2e::{Server, run_cli};
use serde_json::Value;

/// A data dir with a database in it (the admin commands never create one).
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    Server::start(dir.path(), &[]).stop();
    dir
}

/// The secret in the keyring entry, via `secret-tool` (an independent Secret Service client).
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

fn log_kinds(dir: &Path) -> (Vec<String>, String) {
    let out = run_cli(dir, &["log", "--json", "--limit", "100"]);
    assert!(out.status.success(), "{}", text(&out));
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let kinds = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect();
    (kinds, raw)
}

#[test]
fn api_key_goes_to_the_keyring_and_never_to_the_data_dir() {
    if !keyring_session() {
        return;
    }
    let dir = data_dir();
    let name = format!("t-{}", random_hex());
    let secret = format!("sk_test_{}", random_hex());

    let out = add(
        dir.path(),
        &[
            &name,
            "--url",
            "https://api.example.com/v1",
            "--api-key",
            "--header",
            "X-API-Key",
            "--label",
            "work",
        ],
        &secret,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("stored in the OS keyring"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&secret));
    assert_eq!(keyring_lookup(&name).as_deref(), Some(secret.as_str()));

    let out = run_cli(dir.path(), &["connections", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = &listed.as_array().expect("array")[0];
    assert_eq!(row["name"], name.as_str());
    assert_eq!(row["kind"], "api_key");
    assert_eq!(row["header_name"], "X-API-Key");
    assert_eq!(row["label"], "work");
    assert_eq!(row["status"], "active");
    assert!(!text(&out).contains(&secret));
    assert_not_in_data_dir(dir.path(), &secret);

    // The same name twice is refused and leaves the first secret alone.
    let out = add(
        dir.path(),
        &[&name, "--url", "https://x.example", "--bearer"],
        "other",
        &[],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(keyring_lookup(&name).as_deref(), Some(secret.as_str()));

    let out = run_cli(dir.path(), &["connections", "rm", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deleted its secret"), "{}", text(&out));
    assert_eq!(keyring_lookup(&name), None);

    let (kinds, raw) = log_kinds(dir.path());
    assert!(kinds.contains(&"connection.added".to_owned()), "{kinds:?}");
    assert!(
        kinds.contains(&"connection.removed".to_owned()),
        "{kinds:?}"
    );
    assert!(raw.contains("\"keyring_entry_deleted\":true"), "{raw}");
    assert!(!raw.contains(&secret));
    let out = run_cli(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_not_in_data_dir(dir.path(), &secret);
}

#[test]
fn bearer_round_trip_in_the_keyring() {
    if !keyring_session() {
        return;
    }
    let dir = data_dir();
    let name = format!("b-{}", random_hex());
    let secret = format!("ghp_{}", random_hex());
    let out = add(
        dir.path(),
        &[&name, "--url", "https://api.github.com", "--bearer"],
        &secret,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(keyring_lookup(&name).as_deref(), Some(secret.as_str()));
    let out = run_cli(dir.path(), &["connections", "list"]);
    assert!(text(&out).contains(&name), "{}", text(&out));
    let out = run_cli(dir.path(), &["connections", "rm", &name, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let removed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(removed["keyring_entry_deleted"], true);
    assert_eq!(keyring_lookup(&name), None);
    assert_not_in_data_dir(dir.path(), &secret);
}

#[test]
fn without_a_keyring_the_vault_is_sealed_and_nothing_is_written() {
    let dir = data_dir();
    let secret = format!("sk_test_{}", random_hex());
    let (before, _) = log_kinds(dir.path());
    let out = add(
        dir.path(),
        &["sealed", "--url", "https://api.example.com", "--api-key"],
        &secret,
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("the vault is sealed"), "{all}");
    assert!(all.contains("unlock your keyring"), "{all}");
    assert!(!all.contains(&secret), "{all}");

    let out = run_cli(dir.path(), &["connections", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed, serde_json::json!([]));
    let (after, _) = log_kinds(dir.path());
    assert_eq!(before, after, "a sealed add must not write an event");
    assert_not_in_data_dir(dir.path(), &secret);
}

#[test]
fn the_secret_never_comes_from_argv_and_bad_input_is_refused() {
    let dir = data_dir();
    // Empty stdin: no secret, nothing added (refused before the keyring is touched).
    let out = add(
        dir.path(),
        &["x", "--url", "https://a.example", "--bearer"],
        "",
        &[],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no secret on stdin"), "{}", text(&out));
    // A kind is required, and --header needs --api-key.
    let out = run_cli(
        dir.path(),
        &["connections", "add", "x", "--url", "https://a.example"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let out = run_cli(
        dir.path(),
        &[
            "connections",
            "add",
            "x",
            "--url",
            "https://a.example",
            "--bearer",
            "--header",
            "X-K",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    // Invalid names and URLs fail with a clear message, before the keyring is touched.
    let sealed = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")];
    let out = add(
        dir.path(),
        &["Bad Name", "--url", "https://a.example", "--bearer"],
        "s",
        &sealed,
    );
    assert!(
        text(&out).contains("must be 1 to 40 characters"),
        "{}",
        text(&out)
    );
    let out = add(
        dir.path(),
        &["ok", "--url", "https://u:p@a.example", "--bearer"],
        "s",
        &sealed,
    );
    assert!(
        text(&out).contains("must not carry credentials"),
        "{}",
        text(&out)
    );
    let out = run_cli(dir.path(), &["connections", "rm", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no connection named"), "{}", text(&out));
}
