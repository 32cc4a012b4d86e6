//! Harness for black-box tests: starts the real `gatehouse` binary on a temp data dir and a
//! loopback port, reads its JSON Lines approver output, and answers approvals on its stdin.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `gatehouse` binary: `$GATEHOUSE_BIN`, or next to the test executable's parent directory
/// (`target/<profile>/gatehouse`). Build it first (`cargo build -p gatehouse-cli`).
pub fn gatehouse_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/test-xxxx -> target/<profile>/gatehouse
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("gatehouse{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p gatehouse-cli` first (or set GATEHOUSE_BIN)",
        bin.display()
    );
    bin
}

/// A running `gatehouse serve --approver jsonl`.
#[allow(missing_debug_implementations)]
pub struct Server {
    pub issuer: String,
    pub data_dir: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<serde_json::Value>,
    /// Lines already read but not yet asked for.
    backlog: Vec<serde_json::Value>,
}

impl Server {
    /// Starts a server with extra arguments (e.g. `["--approval-timeout", "1"]`).
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::try_start(data_dir, extra).expect("server starts")
    }

    /// Starts a server, or returns what it printed on stderr if it exited instead.
    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(gatehouse_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--approver",
                "jsonl",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("GATEHOUSE_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gatehouse");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => panic!("gatehouse printed a line that is not JSON on stdout: {line}"),
                }
            }
        });
        let (etx, erx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[gatehouse] {line}");
                let _ = etx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(first) => {
                assert_eq!(
                    first["event"], "listening",
                    "the first line must be the listening event: {first}"
                );
                let issuer = first["issuer"].as_str().expect("issuer").to_owned();
                let stdin = child.stdin.take();
                Ok(Server {
                    issuer,
                    data_dir: data_dir.to_path_buf(),
                    child,
                    stdin,
                    lines: rx,
                    backlog: Vec::new(),
                })
            }
            Err(_) => {
                let _ = child.wait_timeout_or_kill(Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(100));
                Err(erx.try_iter().collect::<Vec<_>>().join("\n"))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn port(&self) -> u16 {
        self.issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line whose `event` is `kind` (other lines stay queued).
    pub fn expect_event(&mut self, kind: &str) -> serde_json::Value {
        self.expect_event_matching(kind, |_| true)
    }

    /// Waits for the next line whose `event` is `kind` and that `pred` accepts.
    pub fn expect_event_matching(
        &mut self,
        kind: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|v| v["event"] == kind && pred(v))
        {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == kind && pred(&v) => return v,
                Ok(v) => self.backlog.push(v),
                Err(_) => panic!("no {kind} event within 20 s; saw {:?}", self.backlog),
            }
        }
    }

    /// Sends one decision line, e.g. `json!({"approve": id})`.
    pub fn decide(&mut self, decision: serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{decision}").expect("write decision");
        stdin.flush().expect("flush");
    }

    /// Approves the next consent request, returning its approval_requested line.
    pub fn approve_next(&mut self) -> serde_json::Value {
        let req = self.expect_event("approval_requested");
        self.decide(serde_json::json!({ "approve": req["id"] }));
        self.expect_event_matching("approval_decided", |v| v["id"] == req["id"]);
        req
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child
            .wait_timeout_or_kill(Duration::from_secs(10))
            .expect("wait")
    }

    /// SIGKILL, no cleanup (crash tests).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate();
        }
    }
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_or_kill(&mut self, t: Duration) -> std::io::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + t;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                self.kill()?;
                return self.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `gatehouse ARGS... --data-dir DIR` to completion.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(gatehouse_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GATEHOUSE_LOG", "warn")
        .output()
        .expect("run gatehouse")
}

/// PKCE S256 pair: (verifier, challenge).
pub fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngCore;
    use sha2::{Digest, Sha256};
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let verifier = URL_SAFE_NO_PAD.encode(b);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The audit id Gatehouse records for a token: hex of the first 8 bytes of its SHA-256.
pub fn token_id(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
