//! Stdin as an async stream of lines, for the approvers that read decisions.
//!
//! The lines are read on a dedicated thread rather than with `tokio::io::stdin`: tokio reads stdin
//! on its blocking pool, and a read parked on a terminal or an idle pipe would hold up runtime
//! shutdown until the next keystroke. A plain thread blocked in `read` does not keep the process
//! alive once `main` returns.

use std::io::BufRead;

use tokio::sync::mpsc;

/// Starts reading stdin. The receiver yields each line without its line ending and ends at EOF
/// (or on a read error). Invalid UTF-8 is replaced, so a bad byte is reported as a bad line
/// instead of ending input.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    let spawned = std::thread::Builder::new()
        .name("gatehouse-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut reader = stdin.lock();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        if tx.blocking_send(line).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read stdin; decisions must come from elsewhere");
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        // The receiver then ends at once, exactly as if stdin were closed.
        tracing::warn!(error = %e, "cannot start the stdin reader");
    }
    rx
}
