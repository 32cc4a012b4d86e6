//! `gatehouse serve`: takes the data dir, runs the loopback server with an approver, and shuts
//! everything down in order on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_core::{
    Authority, AuthorityConfig, Clock, DataDirLock, Store, StoreOptions, SystemClock,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinError;

use crate::approver;
use crate::cli::{ApproverKind, ServeArgs};
use crate::output::Output;
use crate::signal;

/// How long in-flight HTTP requests get to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize)]
struct Listening<'a> {
    event: &'static str,
    issuer: &'a str,
}

pub async fn run(data_dir: &Path, args: ServeArgs) -> Result<()> {
    // The lock comes first: a second server on the same data dir stops here, before touching
    // the port or the database. Its message already says what to do.
    let lock = DataDirLock::acquire(data_dir)?;

    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another program using that port? \
             Pass --listen 127.0.0.1:0 to pick any free port",
            args.listen
        )
    })?;
    let local = listener
        .local_addr()
        .context("cannot read the address the server is listening on")?;
    let issuer = gatehouse_server::issuer_for(local);

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(args.busy_timeout_ms),
    };
    let store = Store::open(data_dir, options, clock.clone()).with_context(|| {
        format!(
            "cannot open the Gatehouse database in {}",
            data_dir.display()
        )
    })?;
    let mut config = AuthorityConfig::new(issuer.clone());
    config.approval_ttl = Duration::from_secs(args.approval_timeout);
    let authority = Arc::new(Authority::new(store.clone(), clock, config));
    let maintain = tokio::spawn(authority.clone().maintain());

    let (out, writer) = Output::spawn();
    // Subscribed before the server takes its first request.
    let approver = approver::start(args.approver, &authority, out.clone());

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // The gateway reads each connection's secret from the OS keyring per call; a missing or
    // locked keyring seals the vault (503 at the gateway), with no fallback.
    let vault = gatehouse_core::vault::Vault::with_os_keyring(store.clone());
    let upstreams = Arc::new(gatehouse_server::gateway::VaultUpstreams(vault));
    let mut server = tokio::spawn(gatehouse_server::serve(
        listener,
        authority.clone(),
        upstreams,
        async {
            let _ = stop_rx.await;
        },
    ));

    match args.approver {
        ApproverKind::Jsonl => out.json_line(&Listening {
            event: "listening",
            issuer: &issuer,
        }),
        ApproverKind::Terminal => out.text(format!(
            "Gatehouse is listening on {issuer} (data: {})\n\
             Approval requests appear here as agents make them. Stop with Ctrl-C.\n",
            data_dir.display()
        )),
        ApproverKind::Deny => out.text(format!(
            "Gatehouse is listening on {issuer} (data: {})\n\
             Every approval request is denied (--approver deny). Stop with Ctrl-C.\n",
            data_dir.display()
        )),
    }
    tracing::info!(%issuer, data_dir = %data_dir.display(), approver = ?args.approver, "serving");
    let approver = tokio::spawn(approver);

    // Run until asked to stop, or until the server fails on its own.
    let failed_early = tokio::select! {
        sig = signal::shutdown() => {
            tracing::info!(signal = sig, "stopping");
            None
        }
        result = &mut server => Some(result),
    };

    // Stop taking requests and let the ones in flight finish (briefly).
    let _ = stop_tx.send(());
    let outcome = match failed_early {
        Some(result) => Err(server_failure(result)),
        None => match tokio::time::timeout(DRAIN, &mut server).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(result) => Err(server_failure(result)),
            Err(_) => {
                tracing::warn!("requests still running after {DRAIN:?}; closing them");
                server.abort();
                Ok(())
            }
        },
    };
    approver.abort();
    maintain.abort();
    // Let the aborted tasks drop their store handles and subscriptions before closing.
    let _ = approver.await;
    let _ = maintain.await;
    if let Err(e) = authority.flush_usage().await {
        tracing::warn!(error = %e, "could not record the last token uses");
    }
    store.close();
    drop(out);
    let _ = writer.await;
    drop(lock);

    tracing::info!("stopped");
    outcome
}

/// Why the server task ended when it should not have.
fn server_failure(result: Result<std::io::Result<()>, JoinError>) -> anyhow::Error {
    match result {
        Ok(Ok(())) => anyhow::anyhow!("the HTTP server stopped unexpectedly"),
        Ok(Err(e)) => anyhow::Error::new(e).context("the HTTP server stopped with an error"),
        Err(e) => anyhow::Error::new(e).context("the HTTP server crashed"),
    }
}
