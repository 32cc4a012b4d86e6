//! `gatehouse pause` and `gatehouse resume`: the switch that stops every agent at once. A running
//! server sees the change on its next request.

use std::path::Path;

use anyhow::{Context, Result};
use gatehouse_core::admin;
use serde::Serialize;

use super::{open_store, out_line};
use crate::cli::PauseArgs;

/// Recorded in the audit event as who paused or resumed.
const BY: &str = "cli";

#[derive(Debug, Serialize)]
struct Switched {
    paused: bool,
    /// False when Gatehouse already was in that state.
    changed: bool,
}

pub async fn run(data_dir: &Path, args: &PauseArgs, paused: bool) -> Result<()> {
    let store = open_store(data_dir)?;
    let changed = admin::set_paused(&store, paused, BY)
        .await
        .with_context(|| {
            format!(
                "Gatehouse was not {}",
                if paused { "paused" } else { "resumed" }
            )
        })?;
    let line = if args.json {
        serde_json::to_string(&Switched { paused, changed })?
    } else {
        message(paused, changed).to_owned()
    };
    out_line(&line)?;
    Ok(())
}

pub fn message(paused: bool, changed: bool) -> &'static str {
    match (paused, changed) {
        (true, true) => {
            "Paused: every agent is stopped. No consent is asked, no token is issued or \
             refreshed, and introspection answers inactive until `gatehouse resume`."
        }
        (true, false) => "Gatehouse was already paused; `gatehouse resume` lifts it.",
        (false, true) => "Resumed: agents can use their tokens and ask again.",
        (false, false) => "Gatehouse was not paused; nothing changed.",
    }
}
