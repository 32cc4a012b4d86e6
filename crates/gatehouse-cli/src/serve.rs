//! `gatehouse serve`: takes the data dir, runs the loopback server with an approver, and shuts
//! everything down in order on SIGINT or SIGTERM.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use gatehouse_server::{Instance, InstanceOptions};
use serde::Serialize;

use crate::approver;
use crate::cli::{ApproverKind, ServeArgs};
use crate::output::Output;
use crate::signal;

#[derive(Debug, Serialize)]
struct Listening<'a> {
    event: &'static str,
    issuer: &'a str,
}

pub async fn run(data_dir: &Path, args: ServeArgs) -> Result<()> {
    let options = InstanceOptions {
        data_dir: data_dir.to_path_buf(),
        listen: args.listen,
        approval_timeout: Duration::from_secs(args.approval_timeout),
        busy_timeout: Duration::from_millis(args.busy_timeout_ms),
    };
    let (out, writer) = Output::spawn();
    // Subscribed before the server takes its first request.
    let mut approver = None;
    let mut instance = Instance::start_with(options, |authority| {
        approver = Some(approver::start(args.approver, authority, out.clone()));
    })
    .await?;
    let Some(approver) = approver else {
        anyhow::bail!("the approver did not start");
    };
    let issuer = instance.issuer().to_owned();

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
    tracing::info!(approver = ?args.approver, "approver ready");
    let approver = tokio::spawn(approver);

    // Run until asked to stop, or until the server fails on its own.
    let failed_early = tokio::select! {
        sig = signal::shutdown() => {
            tracing::info!(signal = sig, "stopping");
            None
        }
        e = instance.server_ended() => Some(e),
    };

    // Stop taking requests and let the ones in flight finish (briefly), then the approver, then
    // the rest of the instance.
    let drained = instance.stop_http().await;
    approver.abort();
    // Let the aborted task drop its store handles and subscriptions before closing.
    let _ = approver.await;
    let stopped = instance.stop().await;
    drop(out);
    let _ = writer.await;

    match failed_early {
        Some(e) => Err(e.into()),
        None => Ok(drained.and(stopped)?),
    }
}
