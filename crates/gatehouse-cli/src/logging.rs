//! Diagnostics go to stderr only: stdout carries each command's output, and the jsonl contract
//! depends on nothing else appearing there.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. The filter comes from `GATEHOUSE_LOG`, else `RUST_LOG`, else `info`
/// for the long-running server and `warn` for one-shot commands. The MCP SDK's own `info` lines
/// (a handshake dump per connection, per request) are kept out of the default server log.
pub fn init(serving: bool) {
    let default = if serving { "info,rmcp=warn" } else { "warn" };
    let spec = ["GATEHOUSE_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| default.to_owned());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: ignoring the log filter {spec:?} ({e}); using {default:?}");
        EnvFilter::new(default)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in captured logs.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
