//! `gatehouse audit verify`: recomputes the hash chain and names the first bad row.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use gatehouse_core::admin;
use gatehouse_core::audit::Verification;

use super::{open_store, out_line};
use crate::cli::VerifyArgs;

pub async fn verify(data_dir: &Path, args: &VerifyArgs) -> Result<ExitCode> {
    let store = open_store(data_dir)?;
    let v = admin::verify_audit(&store)
        .await
        .context("cannot read the audit log")?;
    let line = if args.json {
        serde_json::to_string(&v)?
    } else {
        summary(&v)
    };
    out_line(&line)?;
    Ok(if v.first_bad.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ok: N events, chain intact` or `audit log broken at event ID: REASON`.
pub fn summary(v: &Verification) -> String {
    match &v.first_bad {
        None => format!("ok: {} events, chain intact", v.events),
        Some(bad) => format!("audit log broken at event {}: {}", bad.id, bad.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::audit::BadRow;

    #[test]
    fn summaries() {
        let ok = Verification {
            events: 12,
            last_id: 12,
            first_bad: None,
        };
        assert_eq!(summary(&ok), "ok: 12 events, chain intact");
        let bad = Verification {
            events: 3,
            last_id: 3,
            first_bad: Some(BadRow {
                id: 4,
                reason: "hash does not match the row's contents".into(),
            }),
        };
        assert_eq!(
            summary(&bad),
            "audit log broken at event 4: hash does not match the row's contents"
        );
    }
}
