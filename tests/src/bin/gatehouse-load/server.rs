//! The `gatehouse serve` child process: start it on a temp data dir, read its JSON Lines, answer
//! approvals on its stdin, sample its CPU time, and stop it with SIGTERM.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;

/// A temp data dir removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Result<Self> {
        let name = format!(
            "gatehouse-load-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `gatehouse serve --approver jsonl`, stopped (SIGTERM) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    pub issuer: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Each stdout line, parsed, with the moment it was read from the pipe.
    events: mpsc::UnboundedReceiver<(Instant, serde_json::Value)>,
    /// Declared last so the data dir goes after the process has stopped.
    _dir: TempDir,
}

impl ServerProcess {
    pub async fn start(bin: &Path, extra: &[String]) -> Result<Self> {
        let dir = TempDir::new()?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--approver", "jsonl"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            // Keep the server's own logging out of the measurement.
            .env("GATEHOUSE_LOG", "warn")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let stdin = child.stdin.take();
        let (tx, events) = mpsc::unbounded_channel();
        // Read every line for the whole run so the pipe never fills up.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(v) => {
                        let _ = tx.send((at, v));
                    }
                    Err(_) => eprintln!("gatehouse-load: server printed a non-JSON line: {line}"),
                }
            }
        });
        let mut proc = ServerProcess {
            issuer: String::new(),
            child,
            stdin,
            events,
            _dir: dir,
        };
        let first = tokio::time::timeout(Duration::from_secs(30), proc.events.recv()).await;
        let first = match first {
            Ok(Some((_, v))) => v,
            Ok(None) => {
                let status = proc.child.wait().ok();
                bail!("gatehouse serve exited before listening ({status:?}); see its stderr above")
            }
            Err(_) => bail!("gatehouse serve printed nothing within 30 s"),
        };
        if first["event"] != "listening" {
            bail!("the first line of gatehouse serve is not the listening event: {first}");
        }
        proc.issuer = first["issuer"]
            .as_str()
            .context("listening event without issuer")?
            .trim_end_matches('/')
            .to_owned();
        Ok(proc)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's (temporary) data dir.
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// Waits for the next `approval_requested` event and approves it with remember=always.
    pub async fn approve_next_always(&mut self) -> Result<String> {
        let (_, ev) = self
            .next_event("approval_requested", Duration::from_secs(20), |ev| {
                ev["event"] == "approval_requested"
            })
            .await?;
        let id = ev["id"].as_str().context("approval id")?.to_owned();
        self.write_line(&serde_json::json!({ "approve": id, "remember": "always" }))?;
        Ok(id)
    }

    /// The next stdout line that `wanted` accepts (skipping the others), with the moment it was
    /// read. An `error` line about anything fails, since this tool never expects one.
    pub async fn next_event(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<(Instant, serde_json::Value)> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, ev) = tokio::time::timeout(left, self.events.recv())
                .await
                .map_err(|_| anyhow!("no {what} event within {within:?}"))?
                .context("server stdout closed")?;
            if ev["event"] == "error" {
                bail!("the server printed an error while waiting for {what}: {ev}");
            }
            if wanted(&ev) {
                return Ok((at, ev));
            }
        }
    }

    /// Writes one JSON line (a decision) to the server's stdin.
    pub fn write_line(&mut self, line: &serde_json::Value) -> Result<()> {
        let mut text = line.to_string();
        text.push('\n');
        let stdin = self.stdin.as_mut().context("server stdin closed")?;
        // One write, so the line reaches the pipe whole.
        stdin.write_all(text.as_bytes()).context("write decision")?;
        stdin.flush().context("flush decision")
    }

    /// SIGTERM, then wait up to 10 s (SIGKILL after that). Returns how it ended.
    pub fn stop(&mut self) -> Result<String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(format!("had already exited: {status}"));
        }
        drop(self.stdin.take());
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(format!("stopped on SIGTERM: {status}"));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok("did not stop within 10 s of SIGTERM; killed".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Clock ticks per second for `/proc/*/stat` (USER_HZ).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` in ticks, and the thread name, from a `/proc/.../stat` file.
fn stat_ticks(path: &Path) -> Option<(String, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_owned();
    // Fields after the command name start at field 3 (state); utime is 14, stime is 15.
    let rest: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks of a whole process (all threads, live ones).
pub fn process_ticks(pid: u32) -> Option<u64> {
    stat_ticks(Path::new(&format!("/proc/{pid}/stat"))).map(|(_, t)| t)
}

/// Busy CPU ticks of the whole machine (all CPUs), from `/proc/stat`: everything but idle
/// and iowait.
pub fn machine_busy_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are already in user/nice).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle))
}

/// CPU ticks of the load generator itself.
pub fn self_ticks() -> Option<u64> {
    stat_ticks(Path::new("/proc/self/stat")).map(|(_, t)| t)
}

/// Per-thread CPU ticks of a process, keyed by thread id (with the thread's name).
pub fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(v) = stat_ticks(&entry.path().join("stat")) {
            out.insert(tid, v);
        }
    }
    out
}

/// CPU seconds per thread name between two [`thread_ticks`] snapshots, largest first.
/// Threads that appeared in between count from zero; threads that ended are lost.
pub fn thread_delta(
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
    ticks_per_sec: f64,
) -> Vec<(String, f64)> {
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for (tid, (name, t)) in after {
        let t0 = before.get(tid).map_or(0, |(_, t0)| *t0);
        *by_name.entry(name.clone()).or_default() += t.saturating_sub(t0);
    }
    let mut v: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(n, t)| (n, t as f64 / ticks_per_sec))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}
