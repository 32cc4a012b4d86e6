//! The admin commands (`log`, `agents`, `revoke`, `audit verify`). They open the database next to
//! a running server (SQLite takes care of sharing it) and never take the server's lock.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod connections;
pub mod domains;
pub mod log;
pub mod mcp;
pub mod pause;
pub mod revoke;
pub mod rules;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use gatehouse_core::store::DB_FILE;
use gatehouse_core::{Store, StoreOptions, SystemClock};

/// Opens an existing store. Refuses to create one: an admin command pointed at the wrong
/// directory should say so, not leave an empty database behind.
pub fn open_store(data_dir: &Path) -> Result<Store> {
    if !data_dir.join(DB_FILE).is_file() {
        bail!(
            "no Gatehouse data in {}; start `gatehouse serve` first or pass --data-dir",
            data_dir.display()
        );
    }
    Store::open(data_dir, StoreOptions::default(), Arc::new(SystemClock)).with_context(|| {
        format!(
            "cannot open the Gatehouse database in {}",
            data_dir.display()
        )
    })
}

/// Prints one line on stdout. Unlike `println!` it returns an error instead of panicking when
/// the reader has gone (`gatehouse log | head`); `main` treats that as a normal end.
pub fn out_line(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}
