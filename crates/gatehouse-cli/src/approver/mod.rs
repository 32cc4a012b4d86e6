//! Who answers approval requests while `serve` runs: the terminal, a tool over JSON Lines, or a
//! blanket denial. All three read the same [`watch::ApprovalWatch`] stream and decide through the
//! broker, so the audit log records which channel decided.

pub mod deny;
pub mod jsonl;
pub mod terminal;
pub mod watch;

use std::future::Future;

use gatehouse_core::Authority;

use crate::cli::ApproverKind;
use crate::input::stdin_lines;
use crate::output::Output;
use watch::ApprovalWatch;

/// Subscribes now (so nothing filed from here on is missed) and returns the approver's task, to be
/// spawned once the "listening" line is out.
pub fn start(
    kind: ApproverKind,
    authority: &Authority,
    out: Output,
) -> impl Future<Output = ()> + Send + use<> {
    let watch = ApprovalWatch::new(authority);
    let broker = authority.broker().clone();
    async move {
        match kind {
            ApproverKind::Jsonl => jsonl::run(watch, broker, out, stdin_lines()).await,
            ApproverKind::Terminal => terminal::run(watch, broker, out, stdin_lines()).await,
            ApproverKind::Deny => deny::run(watch, broker, out).await,
        }
    }
}
