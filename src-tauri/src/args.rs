//! The command line: the same data-dir, listen and approval-timeout options as `gatehouse serve`
//! (and the same environment variables), plus `--hidden` for autostart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// Where the app listens when neither the command line, the environment nor the settings say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8737";

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-desktop",
    version,
    about = "Gatehouse desktop app: the local authorization server for AI agents, with approvals in \
             the tray, in notifications and in a consent window",
    long_about = "Gatehouse desktop app: runs the same loopback server as `gatehouse serve`, in-process, \
                  with you as the approver (tray menu, notifications, consent window).\n\n\
                  One instance runs per data directory: launching it again on the same directory \
                  brings the running one to the front. Closing the window keeps it in the tray; \
                  \"Quit\" in the tray, SIGINT or SIGTERM stop it."
)]
pub struct Args {
    /// Directory holding Gatehouse's database [default: platform data dir + /gatehouse].
    #[arg(long, env = "GATEHOUSE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address to listen on, loopback only; port 0 picks a free port [default: the setting, else
    /// 127.0.0.1:8737].
    #[arg(long, env = "GATEHOUSE_LISTEN", value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Seconds a request waits for a decision before it expires [default: the setting, else 120].
    #[arg(
        long,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=86_400),
    )]
    pub approval_timeout: Option<u64>,

    /// Start in the tray without showing the main window (for autostart).
    #[arg(long)]
    pub hidden: bool,

    /// How long a write waits for another process's database lock, in milliseconds.
    #[arg(long, hide = true, default_value_t = 5000, value_name = "MS")]
    pub busy_timeout_ms: u64,
}

/// Parses `--listen` like `gatehouse serve` does: an IP socket address (or `localhost:PORT`) that
/// must be loopback, because Gatehouse hands out tokens and must never be reachable from another
/// machine.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("{port:?} is not a port number"))?,
        None => s
            .parse::<SocketAddr>()
            .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8737 or [::1]:8737"))?,
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {addr}: Gatehouse listens on loopback only (127.0.0.1 or [::1]) \
             so that no other machine can reach it"
        ));
    }
    Ok(addr)
}

/// The data dir: `--data-dir`, `GATEHOUSE_DATA_DIR`, else the platform's data dir + `gatehouse`
/// (the same default as the CLI, so both see the same Gatehouse).
pub fn data_dir(args: &Args) -> anyhow::Result<PathBuf> {
    match &args.data_dir {
        Some(dir) => Ok(dir.clone()),
        None => dirs::data_dir()
            .map(|d| d.join("gatehouse"))
            .ok_or_else(|| anyhow::anyhow!("cannot find a data directory; pass --data-dir")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from([
            "gatehouse-desktop",
            "--data-dir",
            "/tmp/x",
            "--listen",
            "127.0.0.1:0",
            "--approval-timeout",
            "30",
            "--hidden",
        ])
        .expect("parses");
        assert_eq!(a.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a.listen, Some("127.0.0.1:0".parse().expect("addr")));
        assert_eq!(a.approval_timeout, Some(30));
        assert!(a.hidden);
    }

    #[test]
    fn listen_must_be_loopback() {
        assert!(parse_listen("0.0.0.0:8737").is_err());
        assert!(parse_listen("192.168.1.2:80").is_err());
        assert_eq!(
            parse_listen("localhost:9000"),
            Ok("127.0.0.1:9000".parse().expect("addr"))
        );
        assert!(Args::try_parse_from(["gatehouse-desktop", "--approval-timeout", "0"]).is_err());
    }
}
