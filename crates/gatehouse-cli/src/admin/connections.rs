//! `gatehouse connections list|add|rm`: upstream accounts whose secrets live in the OS keyring.
//! The secret is read from stdin (hidden when it is a terminal), never from the command line.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use gatehouse_core::secret::Secret;
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::vault::{MAX_SECRET_LEN, Vault, VaultError};
use zeroize::Zeroizing;

use super::agents::render;
use super::{open_store, out_line};
use crate::cli::{ConnectionsAddArgs, ConnectionsListArgs, ConnectionsRmArgs};
use crate::display::{sanitize, short_time, truncate};

/// Recorded as who removed a connection.
const BY: &str = "cli";

fn vault(data_dir: &Path) -> Result<Vault> {
    Ok(Vault::with_os_keyring(open_store(data_dir)?))
}

/// Sealed, invalid and unknown-name errors are the person's to fix: say them plainly.
fn explain(e: VaultError, what: &str) -> anyhow::Error {
    match e {
        e @ (VaultError::Sealed(_)
        | VaultError::Invalid(_)
        | VaultError::AlreadyExists(_)
        | VaultError::UnknownConnection(_)) => anyhow::anyhow!("{e}"),
        e => anyhow::Error::new(e).context(what.to_owned()),
    }
}

pub async fn list(data_dir: &Path, args: &ConnectionsListArgs) -> Result<()> {
    let vault = vault(data_dir)?;
    let rows = vault.list().await.context("cannot read the connections")?;
    if args.json {
        out_line(&serde_json::to_string_pretty(&rows)?)?;
    } else if rows.is_empty() {
        out_line(
            "No connections. Add one with `gatehouse connections add NAME --url URL --api-key|--bearer` \
             (the secret is read from stdin and stored in the OS keyring).",
        )?;
    } else {
        out_line(table(&rows).trim_end())?;
    }
    Ok(())
}

pub async fn add(data_dir: &Path, args: &ConnectionsAddArgs) -> Result<()> {
    let vault = vault(data_dir)?;
    let secret = read_secret()?;
    let added = if args.api_key {
        vault
            .add_api_key(&args.name, &args.url, &args.header, &args.label, secret)
            .await
    } else {
        vault
            .add_bearer(&args.name, &args.url, &args.label, secret)
            .await
    };
    let row = added.map_err(|e| explain(e, "the connection was not added"))?;
    if args.json {
        out_line(&serde_json::to_string(&row)?)?;
    } else {
        let how = match &row.header_name {
            Some(h) => format!("sent as {}", sanitize(h)),
            None => "sent as Authorization: Bearer".to_owned(),
        };
        out_line(&format!(
            "Added connection {} to {} ({how}). The secret is stored in the OS keyring \
             (service gatehouse, entry {}); the database keeps only this metadata.",
            row.name,
            sanitize(&row.base_url),
            row.keyring_ref
        ))?;
    }
    Ok(())
}

pub async fn rm(data_dir: &Path, args: &ConnectionsRmArgs) -> Result<()> {
    let vault = vault(data_dir)?;
    let removed = vault
        .remove(&args.name, BY)
        .await
        .map_err(|e| explain(e, "the connection was not removed"))?;
    if args.json {
        out_line(&serde_json::to_string(&removed)?)?;
    } else if removed.keyring_entry_deleted {
        out_line(&format!(
            "Removed connection {} and deleted its secret from the OS keyring.",
            removed.connection.name
        ))?;
    } else {
        out_line(&format!(
            "Removed connection {}; the OS keyring had no secret for it any more.",
            removed.connection.name
        ))?;
    }
    Ok(())
}

/// The first line of stdin, without its line ending. On a terminal: a prompt on stderr and no echo.
fn read_secret() -> Result<Secret> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let mut line = Zeroizing::new(String::new());
    if terminal {
        eprint!("Secret (input hidden; it goes to the OS keyring): ");
        set_echo(false);
    }
    let read = stdin
        .lock()
        .take(MAX_SECRET_LEN as u64 + 2)
        .read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.context("cannot read the secret from stdin")?;
    let secret = line.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        bail!(
            "no secret on stdin: pipe it in (printf %s \"$TOKEN\" | gatehouse connections add ...) \
             or type it at the prompt"
        );
    }
    Ok(Secret::from_presented(secret))
}

/// Turns terminal echo off or on with `stty` (best effort: without it the input is echoed).
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The table, one connection per row, by name.
fn table(rows: &[ConnectionRow]) -> String {
    let header = [
        "NAME",
        "KIND",
        "PROVIDER",
        "LABEL",
        "URL",
        "STATUS",
        "CREATED (UTC)",
        "LAST USED (UTC)",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut out = vec![header];
    let cell = |s: &str| truncate(&sanitize(s), 40).into_owned();
    for r in rows {
        out.push(vec![
            r.name.clone(),
            r.kind.clone(),
            cell(&r.provider),
            if r.label.is_empty() {
                "-".into()
            } else {
                cell(&r.label)
            },
            cell(&r.base_url),
            r.status.clone(),
            short_time(r.created_at),
            r.last_used_at.map(short_time).unwrap_or_else(|| "-".into()),
        ]);
    }
    render(&out)
}
