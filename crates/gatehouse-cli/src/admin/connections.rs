//! `gatehouse connections list|add|reconnect|rm`: upstream accounts whose secrets live in the OS
//! keyring. A secret is read from stdin (hidden when it is a terminal), never from the command
//! line. OAuth connections run the authorization-code flow with a loopback callback served from
//! this process.

use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gatehouse_core::secret::Secret;
use gatehouse_core::store::connections::ConnectionRow;
use gatehouse_core::vault::oauth::{
    CUSTOM_PROVIDER, ConnectFlows, ConnectRequest, OAuthApp, StartedFlow,
};
use gatehouse_core::vault::{MAX_SECRET_LEN, Vault, VaultError};
use zeroize::Zeroizing;

use super::agents::render;
use super::{open_store, out_line};
use crate::cli::{
    ConnectionsAddArgs, ConnectionsListArgs, ConnectionsReconnectArgs, ConnectionsRmArgs,
    OAuthRedirectArgs,
};
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
    if let Some(provider) = &args.oauth {
        return add_oauth(&vault, provider, args).await;
    }
    let url = args.url.as_deref().unwrap_or_default();
    let secret = read_secret()?;
    let added = if args.api_key {
        vault
            .add_api_key(&args.name, url, &args.header, &args.label, secret)
            .await
    } else {
        vault.add_bearer(&args.name, url, &args.label, secret).await
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
        return Ok(());
    }
    match removed.upstream_revocation.as_deref() {
        Some("ok") => out_line("Revoked its tokens at the provider.")?,
        Some("not_supported") => out_line(
            "The provider has no token revocation endpoint: revoke Gatehouse's access in your \
             account settings there if you want it gone upstream too.",
        )?,
        Some(failed) => out_line(&format!(
            "The provider did not confirm the revocation ({}); revoke Gatehouse's access in your \
             account settings there.",
            sanitize(failed)
        ))?,
        None => {}
    }
    if removed.keyring_entry_deleted {
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

/// `connections add NAME --oauth PROVIDER`: runs the flow and stores the tokens.
async fn add_oauth(vault: &Vault, provider: &str, args: &ConnectionsAddArgs) -> Result<()> {
    let Some(client_id) = args.client_id.as_deref() else {
        bail!("--oauth needs --client-id: the client id of your OAuth app at the provider");
    };
    let scopes = args.scopes.as_deref().map(|s| {
        s.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let app = if provider.eq_ignore_ascii_case(CUSTOM_PROVIDER) {
        let (Some(authorization_url), Some(token_url), Some(url)) =
            (&args.authorization_url, &args.token_url, &args.url)
        else {
            bail!("--oauth custom needs --authorization-url, --token-url and --url (the API)");
        };
        OAuthApp {
            provider: CUSTOM_PROVIDER.to_owned(),
            authorization_url: authorization_url.clone(),
            token_url: token_url.clone(),
            revocation_url: args.revocation_url.clone(),
            client_id: client_id.to_owned(),
            scopes: scopes.unwrap_or_default(),
            api_base_url: url.clone(),
        }
    } else {
        if args.authorization_url.is_some()
            || args.token_url.is_some()
            || args.revocation_url.is_some()
        {
            bail!("--authorization-url, --token-url and --revocation-url go with --oauth custom");
        }
        OAuthApp::preset(provider, client_id, scopes, args.url.as_deref())
            .map_err(|e| explain(e, "the connection was not added"))?
    };
    let client_secret = if args.client_secret_stdin {
        Some(read_secret()?)
    } else {
        None
    };
    let request = ConnectRequest {
        name: args.name.clone(),
        label: args.label.clone(),
        app,
        client_secret,
    };
    let row = run_flow(&args.redirect, |flows, redirect_uri| async move {
        flows.start(vault, request, &redirect_uri).await
    })
    .await?;
    print_connected(&row, args.json, "Connected")
}

/// `connections reconnect NAME`: the flow again, with the connection's stored settings.
pub async fn reconnect(data_dir: &Path, args: &ConnectionsReconnectArgs) -> Result<()> {
    let vault = vault(data_dir)?;
    let client_secret = if args.client_secret_stdin {
        Some(read_secret()?)
    } else {
        None
    };
    let name = args.name.clone();
    let row = run_flow(&args.redirect, |flows, redirect_uri| {
        let vault = &vault;
        async move {
            flows
                .start_reconnect(vault, &name, client_secret, &redirect_uri)
                .await
        }
    })
    .await?;
    print_connected(&row, args.json, "Reconnected")
}

fn print_connected(row: &ConnectionRow, json: bool, what: &str) -> Result<()> {
    if json {
        out_line(&serde_json::to_string(row)?)?;
    } else {
        let expiry = row
            .expires_at
            .map(|at| {
                format!(
                    "; the access token expires at {} UTC and is refreshed before then",
                    short_time(at)
                )
            })
            .unwrap_or_default();
        out_line(&format!(
            "{what} {} ({}{}). Its tokens are stored in the OS keyring (service gatehouse, entry \
             {}){expiry}. Agents reach it through /gateway/{}/.",
            row.name,
            sanitize(&row.provider),
            if row.label.is_empty() {
                String::new()
            } else {
                format!(", {}", sanitize(&row.label))
            },
            row.keyring_ref,
            row.name
        ))?;
    }
    Ok(())
}

/// Serves the loopback callback, starts the flow with its redirect URI, shows the authorization
/// URL (and opens it), and waits for the callback, the timeout or Ctrl-C.
async fn run_flow<F, Fut>(redirect: &OAuthRedirectArgs, start: F) -> Result<ConnectionRow>
where
    F: FnOnce(ConnectFlows, String) -> Fut,
    Fut: std::future::Future<Output = Result<StartedFlow, VaultError>>,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", redirect.redirect_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for the OAuth redirect; pick another --redirect-port",
                redirect.redirect_port
            )
        })?;
    let port = listener.local_addr()?.port();
    let flows = ConnectFlows::new();
    let redirect_uri = ConnectFlows::redirect_uri(port);
    let started = start(flows.clone(), redirect_uri.clone())
        .await
        .map_err(|e| explain(e, "the connection flow could not start"))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gatehouse_server::connect::serve_callback(
        listener,
        flows.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    eprintln!(
        "Log in at the provider to connect {} (waiting up to {} s for the redirect to {}):",
        started.connection, redirect.timeout, started.redirect_uri
    );
    eprintln!("{}", started.authorization_url);
    if !redirect.no_browser {
        open_browser(&started.authorization_url);
    }
    let outcome = tokio::select! {
        done = started.completion.wait() => done.map_err(|e| anyhow::anyhow!("not connected: {e}")),
        () = tokio::time::sleep(Duration::from_secs(redirect.timeout)) => Err(anyhow::anyhow!(
            "not connected: no redirect from the provider within {} s; nothing was stored",
            redirect.timeout
        )),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("not connected: interrupted; nothing was stored")),
    };
    // Stops taking requests; the callback that completed the flow still gets its page.
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
    outcome
}

/// Opens an http(s) URL with `xdg-open` (best effort; the URL is printed anyway).
fn open_browser(url: &str) {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
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
