//! `gatehouse revoke CLIENT_ID`: kills an agent's registration, grants, tokens, remembered
//! consent and pending approvals in one audited step, and says what died.

use std::path::Path;

use anyhow::{Result, bail};
use gatehouse_core::admin::{self, AdminError, RevokeSummary};
use gatehouse_core::store::StoreError;
use gatehouse_core::store::agents;
use serde::Serialize;

use super::{open_store, out_line};
use crate::cli::RevokeArgs;
use crate::display::sanitize;

/// Recorded in the audit event as who revoked.
const BY: &str = "cli";

#[derive(Debug, Serialize)]
struct Revoked<'a> {
    client_id: &'a str,
    client_name: Option<&'a str>,
    #[serde(flatten)]
    summary: RevokeSummary,
}

pub async fn run(data_dir: &Path, args: &RevokeArgs) -> Result<()> {
    let store = open_store(data_dir)?;
    let id = args.client_id.clone();
    // Only for the message: the revocation itself re-reads the agent inside its transaction.
    let name = store
        .read(move |c| agents::get(c, &id).map_err(StoreError::from))
        .await?
        .and_then(|a| a.client_name);
    let summary = match admin::revoke_agent(&store, &args.client_id, BY).await {
        Ok(s) => s,
        Err(e @ (AdminError::UnknownAgent(_) | AdminError::AlreadyRevoked(_))) => bail!("{e}"),
        Err(e) => return Err(anyhow::Error::new(e).context("the agent was not revoked")),
    };
    let line = if args.json {
        serde_json::to_string(&Revoked {
            client_id: &args.client_id,
            client_name: name.as_deref(),
            summary,
        })?
    } else {
        describe(&args.client_id, name.as_deref(), &summary)
    };
    out_line(&line)?;
    Ok(())
}

/// `Revoked agt_… (Name): 1 grant, 4 tokens, 0 remembered consents, 0 pending approvals denied.`
pub fn describe(client_id: &str, name: Option<&str>, s: &RevokeSummary) -> String {
    let who = match name {
        Some(n) => format!("{client_id} ({})", sanitize(n)),
        None => client_id.to_owned(),
    };
    format!(
        "Revoked {who}: {}, {}, {}, {} denied.",
        count(s.grants, "grant"),
        count(s.tokens, "token"),
        count(s.remembered_consents, "remembered consent"),
        count(s.pending_approvals_denied, "pending approval"),
    )
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_died() {
        let s = RevokeSummary {
            grants: 1,
            tokens: 4,
            remembered_consents: 0,
            pending_approvals_denied: 1,
        };
        assert_eq!(
            describe("agt_1", Some("Mail\nhelper"), &s),
            "Revoked agt_1 (Mail\\nhelper): 1 grant, 4 tokens, 0 remembered consents, 1 pending approval denied."
        );
    }
}
