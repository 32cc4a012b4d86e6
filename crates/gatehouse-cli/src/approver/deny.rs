//! The deny approver: refuses every request the moment it arrives. For unattended servers and for
//! tests of the denial path.

use gatehouse_core::approvals::{Broker, DecideError, Decision};

use super::watch::{ApprovalWatch, Update};
use crate::display::sanitize;
use crate::output::Output;

/// The channel name recorded in the audit log for decisions made here.
pub const CHANNEL: &str = "deny-approver";

/// Runs until the broker goes away.
pub async fn run(mut watch: ApprovalWatch, broker: Broker, out: Output) {
    while let Some(update) = watch.next().await {
        let Update::Requested(view) = update else {
            continue;
        };
        let name = sanitize(view.client_name.as_deref().unwrap_or(&view.client_id)).into_owned();
        match broker.decide(&view.id, Decision::deny(), CHANNEL).await {
            Ok(_) => out.text(format!(
                "Denied {} from {name} ({}).\n",
                view.id, view.client_id
            )),
            // Someone (or the clock) got there first; the request is over either way.
            Err(DecideError::AlreadyDecided(_) | DecideError::Expired) => {}
            Err(e) => tracing::warn!(error = %e, approval = %view.id, "could not deny the request"),
        }
    }
}
