//! Writes the TypeScript types of every IPC payload into `ui/src/lib/bindings/`:
//! `cargo test -p gatehouse-desktop export_bindings`. The files are committed; CI fails when they
//! are stale.

use std::path::{Path, PathBuf};

use ts_rs::TS;

use crate::error::{IpcError, IpcErrorCode};
use crate::ops::{AppStatus, DecidedNotice, DecisionInput, EventQueryInput};

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/bindings")
}

#[test]
fn export_bindings() {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("create the bindings dir");
    IpcError::export_all_to(&dir).expect("IpcError");
    IpcErrorCode::export_all_to(&dir).expect("IpcErrorCode");
    AppStatus::export_all_to(&dir).expect("AppStatus");
    DecisionInput::export_all_to(&dir).expect("DecisionInput");
    DecidedNotice::export_all_to(&dir).expect("DecidedNotice");
    EventQueryInput::export_all_to(&dir).expect("EventQueryInput");
}
