//! Harness for the desktop E2E tests: the headless session they need (an X display and a D-Bus
//! session bus, as `scripts/test.sh` provides), the `gatehouse-desktop` binary launched directly
//! ([`App`]) or through WebDriver ([`webdriver`]), a test-owned notification daemon
//! ([`notifications`]) and a client of the tray's dbusmenu ([`tray`]).
//!
//! One notification daemon name and one tray live on a session bus, so the tests run one at a
//! time: each takes [`serial`] first.

pub mod notifications;
pub mod tray;
pub mod webdriver;
pub mod x11;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::OutputLog;

/// Taken by every desktop test for its whole run (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Checks the headless session and waits for the other desktop tests to finish.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    require_session();
    SERIAL.lock().await
}

/// Panics (the tests fail, they do not skip) unless there is an X display and a session bus:
/// the desktop app cannot start without them, and a suite that skipped would hide that CI no
/// longer runs it.
pub fn require_session() {
    let display = std::env::var("DISPLAY").unwrap_or_default();
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    assert!(
        !display.is_empty() && !bus.is_empty(),
        "the desktop E2E tests need a headless desktop session: an X display (DISPLAY={display:?}) \
         and a D-Bus session bus (DBUS_SESSION_BUS_ADDRESS={bus:?}). Run them through \
         scripts/test.sh, which starts Xvfb inside dbus-run-session with a throwaway gnome-keyring."
    );
}

/// The `gatehouse-desktop` binary: `$GATEHOUSE_DESKTOP_BIN`, or `target/<profile>/` next to the
/// test executable's parent directory. Build it first (`cargo build -p gatehouse-desktop`).
pub fn desktop_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_DESKTOP_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("gatehouse-desktop{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: build the UI (cd ui && npm ci && npm run build) and then \
         `cargo build -p gatehouse-desktop` (or set GATEHOUSE_DESKTOP_BIN)",
        bin.display()
    );
    bin
}

/// A free loopback TCP port (bound, read, released: good enough for a child to take next).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// The port of an issuer such as `http://127.0.0.1:8737`.
pub fn issuer_port(issuer: &str) -> u16 {
    issuer
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in issuer {issuer:?}"))
}

/// The `{"event":"listening","issuer":...}` line's issuer, if `line` is that line.
fn listening_issuer(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["event"] != "listening" {
        return None;
    }
    v["issuer"].as_str().map(str::to_owned)
}

/// Sends `signal` (`"TERM"`, `"INT"`...) to `pid` with `kill`.
pub fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// How long a SIGTERM may take before the test fails (docs/desktop.md: "within a few seconds";
/// the HTTP drain alone may take 3 s).
pub const STOP_WITHIN: Duration = Duration::from_secs(8);

/// A `gatehouse-desktop` launched directly on a data dir with `--listen 127.0.0.1:0` (and
/// `--hidden` unless asked otherwise). It learns the issuer from the app's first stdout line and,
/// when dropped, stops the app with SIGTERM and asserts it exits cleanly within [`STOP_WITHIN`].
#[allow(missing_debug_implementations)]
pub struct App {
    pub issuer: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    output: OutputLog,
}

impl App {
    /// Starts the app hidden in the tray (no window: tray and notification tests).
    pub fn start_hidden(data_dir: &Path, extra: &[&str]) -> App {
        let mut args = vec!["--hidden"];
        args.extend_from_slice(extra);
        Self::start(data_dir, &args)
    }

    /// Starts the app with `extra` arguments after `--data-dir DIR --listen 127.0.0.1:0`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> App {
        let mut child = desktop_command(data_dir, extra)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", desktop_bin().display()));
        let output = OutputLog::default();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let out_log = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out_log.push(&line);
                if let Some(issuer) = listening_issuer(&line) {
                    let _ = tx.send(issuer);
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let err_log = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[gatehouse-desktop] {line}");
                err_log.push(&line);
            }
        });
        let issuer = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(issuer) => issuer,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gatehouse-desktop printed no {{\"event\":\"listening\",...}} line within 30 s \
                     (exit status {status:?}); output:\n{}",
                    output.text()
                );
            }
        };
        App {
            issuer,
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("app running")
    }

    /// Everything the app printed so far.
    pub fn output(&self) -> OutputLog {
        self.output.clone()
    }

    /// `None` while the app runs, its exit status once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGTERM and returns the exit status, panicking unless the app exits within
    /// [`STOP_WITHIN`] (it is then killed).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("app running");
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        send_signal(child.id(), "TERM");
        match crate::wait_for_exit(&mut child, STOP_WITHIN) {
            Ok(Some(status)) => status,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gatehouse-desktop did not exit within {STOP_WITHIN:?} of SIGTERM; output:\n{}",
                    self.output.text()
                );
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if std::thread::panicking() {
            // Already failing: stop it without a second panic that would abort the test binary.
            if let Some(mut child) = self.child.take() {
                send_signal(child.id(), "TERM");
                if !matches!(crate::wait_for_exit(&mut child, STOP_WITHIN), Ok(Some(_))) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            return;
        }
        let status = self.terminate();
        assert!(
            status.success(),
            "gatehouse-desktop should exit 0 on SIGTERM, got {status}; output:\n{}",
            self.output.text()
        );
    }
}

/// `gatehouse-desktop --data-dir DIR ARGS...` with `GATEHOUSE_LOG=warn`, not started.
pub fn desktop_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(desktop_bin());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("GATEHOUSE_LOG", "warn");
    command
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where README screenshots go when `GATEHOUSE_SCREENSHOTS=1`: `docs/img/` of the repository.
pub fn screenshot_dir() -> Option<PathBuf> {
    if std::env::var("GATEHOUSE_SCREENSHOTS").ok().as_deref() != Some("1") {
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img");
    std::fs::create_dir_all(&dir).expect("create docs/img");
    Some(dir)
}

/// Saves the whole X screen as PNG with ImageMagick's `import` (for windows WebDriver does not
/// drive, such as a consent window opened by the shell).
pub fn screenshot_root(path: &Path) {
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(path)
        .status()
        .expect("run import (imagemagick)");
    assert!(status.success(), "import -window root failed: {status}");
}
