//! `desktop-figures`: measures the release `gatehouse-desktop` the way a person meets it and prints
//! the figures docs/desktop-figures.md quotes. Run it inside a headless desktop session (Xvfb, a
//! D-Bus session bus, an unlocked throwaway gnome-keyring): `scripts/desktop-figures.sh` builds
//! the release binaries and does that.
//!
//! 1. Launch, `--runs` times on a fresh data dir, the app started directly (no WebDriver): from
//!    spawn to the `listening` line on stdout; to the tray being ready (its dbusmenu answers
//!    `GetLayout` with "Open Gatehouse"); to the main window being mapped (X11 map state); to its
//!    first non-blank paint (the window's pixels, read back from the X server, are no longer one
//!    colour). Then the same launch through tauri-driver: session creation, the first
//!    `[data-testid=nav-approvals]` WebDriver finds, and the page's own first-contentful-paint
//!    when WebKit reports one.
//! 2. Idle memory: RSS and PSS (`/proc/PID/smaps_rollup`) of the app and every descendant process
//!    (WebKitWebProcess, WebKitNetworkProcess...), after 10 s idle with the main window shown, and
//!    again 10 s after the window was closed to the tray.
//! 3. Activity with `--events` (1,000,000) audit events: a data dir built through the real store
//!    API (hash chain intact; `gatehouse audit verify` times it), opened in the app under
//!    tauri-driver; click to first `[data-testid=event-row]`; a text search and an agent filter;
//!    `--scrolls` page-down scrolls (time to settle, keyset page loads, DOM rows); a scripted
//!    smooth scroll timed by `requestAnimationFrame`.
//!
//! Every timing comes from the run itself: nothing is assumed or hard-coded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use gatehouse_core::audit::{EventKind, NewEvent, Outcome};
use gatehouse_core::clock::SystemClock;
use gatehouse_core::oauth::registration::RegistrationRequest;
use gatehouse_core::{Authority, AuthorityConfig, Store, StoreError, StoreOptions};
use gatehouse_e2e::desktop::webdriver::{Session, TauriDriver};
use gatehouse_e2e::desktop::{self, tray::Tray, x11};
use serde_json::{Value, json};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};

/// The main window's title (src-tauri/src/windows.rs).
const MAIN_TITLE: &str = "Gatehouse";
const OPEN_ITEM: &str = "Open Gatehouse";
/// Registered agents in the 1M-event data dir (the Activity view's agent filter lists them).
const AGENTS: usize = 20;
const EVENTS_PER_WRITE: u64 = 10_000;
/// The word 1% of the generated events carry (in a scope), for the text search.
const RARE_WORD: &str = "payroll";

#[derive(Parser, Debug)]
#[command(about = "Launch time, idle memory and 1M-event Activity figures of gatehouse-desktop")]
struct Args {
    /// Launch runs (each on a fresh data dir); medians and maxima are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Audit events in the Activity data dir.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Page-down scrolls in the Activity view.
    #[arg(long, default_value_t = 220)]
    scrolls: usize,
    /// Seconds of idle before each memory reading.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
    /// Seconds of scripted smooth scrolling timed by requestAnimationFrame.
    #[arg(long, default_value_t = 6)]
    smooth_secs: u64,
    /// Keep (or reuse, if it holds a store) the Activity data dir here instead of a temp dir.
    #[arg(long)]
    activity_dir: Option<PathBuf>,
    /// Which parts to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "launch,webdriver,memory,activity"
    )]
    only: Vec<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    desktop::require_session();
    let bin = desktop::desktop_bin();
    println!("# desktop-figures on {}", bin.display());
    println!(
        "machine: {} cores, load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let want = |p: &str| args.only.iter().any(|o| o == p);
    if want("launch") {
        rt.block_on(launch_figures(args.runs))?;
    }
    if want("webdriver") {
        rt.block_on(webdriver_launch_figures(args.runs))?;
    }
    if want("memory") {
        rt.block_on(memory_figures(Duration::from_secs(args.idle_secs)))?;
    }
    if want("activity") {
        rt.block_on(activity_figures(&args))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Statistics and printing

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Nearest-rank percentile of unsorted values (NaN-free).
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn summary_line(what: &str, v: &[f64]) {
    let all: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
    println!(
        "| {what} | {:.0} | {:.0} | {} |",
        median(v),
        max(v),
        all.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Launch

/// The app started directly with `--listen 127.0.0.1:0` and the window shown; its stdout's
/// `listening` line is timestamped as it arrives, stderr is kept for errors.
struct Launched {
    child: Child,
    listening: mpsc::Receiver<Instant>,
    stderr: Arc<std::sync::Mutex<String>>,
}

fn spawn_app(data_dir: &Path, extra: &[&str]) -> Result<Launched> {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = desktop::desktop_command(data_dir, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn gatehouse-desktop")?;
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().context("stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"listening\"") {
                let _ = tx.send(Instant::now());
            }
        }
    });
    let stderr_text = Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().context("stderr")?;
    let keep = stderr_text.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        keep.lock().expect("stderr lock").push_str(&s);
    });
    Ok(Launched {
        child,
        listening: rx,
        stderr: stderr_text,
    })
}

fn stop_app(mut launched: Launched) -> Result<()> {
    desktop::send_signal(launched.child.id(), "TERM");
    match gatehouse_e2e::wait_for_exit(&mut launched.child, desktop::STOP_WITHIN)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!(
            "gatehouse-desktop exited {status} on SIGTERM; stderr:\n{}",
            launched.stderr.lock().expect("stderr lock")
        ),
        None => {
            let _ = launched.child.kill();
            let _ = launched.child.wait();
            bail!(
                "gatehouse-desktop did not exit within {:?} of SIGTERM",
                desktop::STOP_WITHIN
            )
        }
    }
}

/// When the main window got mapped and when it first showed non-uniform pixels.
#[derive(Debug, Clone, Copy)]
struct PaintTimes {
    mapped: Instant,
    painted: Instant,
}

/// The top-left corner of the main window read for the paint check (px): the sidebar with the
/// "Gatehouse" brand and the nav labels, short of the sidebar's border.
const PAINT_PROBE: (i32, i32) = (190, 300);

/// Polls the X server for the main window: map state every 5 ms, then the pixels of its
/// [`PAINT_PROBE`] corner every 10 ms until fewer than 99.5% of them share one colour (before
/// the page paints, that corner is the flat window background; painted, it holds the brand and
/// the nav labels).
fn watch_paint(timeout: Duration) -> Result<PaintTimes> {
    let deadline = Instant::now() + timeout;
    let (conn, _) = x11rb::connect(None).context("connect to the X display")?;
    let (window, mapped) = loop {
        if let Some(t) = x11::top_levels()
            .into_iter()
            .find(|t| t.title == MAIN_TITLE && t.viewable)
        {
            break (t.window, Instant::now());
        }
        if Instant::now() > deadline {
            bail!("no main window mapped within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    loop {
        if window_painted(&conn, window).unwrap_or(false) {
            return Ok(PaintTimes {
                mapped,
                painted: Instant::now(),
            });
        }
        if Instant::now() > deadline {
            bail!("the main window stayed one colour for {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn window_painted(conn: &impl Connection, window: u32) -> Result<bool> {
    // Read from the root window, clipped to the screen: get_image on a window that reaches past
    // the screen edge fails with a Match error.
    let root = conn.setup().roots[0].root;
    let screen = conn.get_geometry(root)?.reply()?;
    let geo = conn.get_geometry(window)?.reply()?;
    let at = conn.translate_coordinates(window, root, 0, 0)?.reply()?;
    // Only the sidebar's corner (brand and nav labels) is read: a whole-window read every few
    // milliseconds would take a large share of this 2-core machine from the app being timed.
    let (x, y) = (at.dst_x.max(0), at.dst_y.max(0));
    let right = i32::from(at.dst_x) + i32::from(geo.width).min(PAINT_PROBE.0);
    let bottom = i32::from(at.dst_y) + i32::from(geo.height).min(PAINT_PROBE.1);
    let w = right.min(i32::from(screen.width)) - i32::from(x);
    let h = bottom.min(i32::from(screen.height)) - i32::from(y);
    if w <= 0 || h <= 0 {
        return Ok(false);
    }
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, x, y, w as u16, h as u16, !0)?
        .reply()?;
    Ok(non_uniform(&img.data))
}

/// Whether more than 0.5% of the 32-bit pixels differ from the most common one.
fn non_uniform(data: &[u8]) -> bool {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    let mut n = 0usize;
    for px in data.chunks_exact(4) {
        let v = u32::from_le_bytes([px[0], px[1], px[2], 0]);
        *counts.entry(v).or_default() += 1;
        n += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    n > 0 && (n - top) * 200 > n
}

async fn launch_figures(runs: usize) -> Result<()> {
    println!("\n## 1. Launch (app started directly, fresh data dir each run)\n");
    let mut listening = Vec::new();
    let mut tray = Vec::new();
    let mut mapped = Vec::new();
    let mut painted = Vec::new();
    let mut hidden_listening = Vec::new();
    let mut hidden_tray = Vec::new();
    for run in 0..runs {
        // Window shown (as `scripts/run.sh` starts it).
        let (listen_at, tray_at, paint) = launch_once(false).await?;
        let row = [
            ms(listen_at),
            ms(tray_at),
            ms(paint.map_or(Duration::ZERO, |p| p.0)),
            ms(paint.map_or(Duration::ZERO, |p| p.1)),
        ];
        eprintln!("launch run {run}: listening/tray/mapped/painted ms {row:.0?}");
        listening.push(row[0]);
        tray.push(row[1]);
        mapped.push(row[2]);
        painted.push(row[3]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // `--hidden` (autostart): no window, tray only.
        let (listen_at, tray_at, _) = launch_once(true).await?;
        eprintln!(
            "hidden launch run {run}: listening/tray ms {:.0} {:.0}",
            ms(listen_at),
            ms(tray_at)
        );
        hidden_listening.push(ms(listen_at));
        hidden_tray.push(ms(tray_at));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("| from spawn to (ms) | median | max | runs |\n|---|---|---|---|");
    summary_line("`listening` line on stdout", &listening);
    summary_line("tray ready (dbusmenu lists \"Open Gatehouse\")", &tray);
    summary_line("main window mapped (X11)", &mapped);
    summary_line("main window first non-blank paint (X11 pixels)", &painted);
    summary_line("`--hidden`: `listening` line on stdout", &hidden_listening);
    summary_line("`--hidden`: tray ready", &hidden_tray);
    Ok(())
}

/// One launch on a fresh data dir: spawn → listening, spawn → tray ready and, unless hidden,
/// spawn → (window mapped, first non-blank paint).
async fn launch_once(hidden: bool) -> Result<(Duration, Duration, Option<(Duration, Duration)>)> {
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let launched = spawn_app(dir.path(), if hidden { &["--hidden"] } else { &[] })?;
    let pid = launched.child.id();
    let paint = (!hidden).then(|| std::thread::spawn(|| watch_paint(Duration::from_secs(60))));
    let t = Tray::find(pid, Duration::from_secs(60)).await;
    t.wait_for_item(OPEN_ITEM, Duration::from_secs(60), |i| i.label == OPEN_ITEM)
        .await;
    let tray_at = t0.elapsed();
    let listen_at = launched
        .listening
        .recv_timeout(Duration::from_secs(60))
        .context("no listening line within 60 s")?
        - t0;
    let paint = match paint {
        Some(p) => {
            let p = p.join().expect("paint watcher")?;
            Some((p.mapped - t0, p.painted - t0))
        }
        None => None,
    };
    stop_app(launched)?;
    Ok((listen_at, tray_at, paint))
}

/// The app's start through tauri-driver: session creation (tauri-driver → WebKitWebDriver → app),
/// then the first WebDriver find of the Approvals nav, and WebKit's own paint timing if any.
async fn webdriver_launch_figures(runs: usize) -> Result<()> {
    println!("\n## 1b. Launch through tauri-driver (WebDriver), fresh data dir each run\n");
    let driver = TauriDriver::start().await;
    let bin = desktop::desktop_bin();
    let mut session_ms = Vec::new();
    let mut nav_ms = Vec::new();
    let mut fcp_ms = Vec::new();
    let mut no_fcp = 0;
    for run in 0..runs {
        let dir = tempfile::tempdir()?;
        let args = vec![
            "--data-dir".to_owned(),
            dir.path().display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        let t0 = Instant::now();
        let t0_epoch = epoch_ms();
        let session = Session::start(&driver, &bin, &args).await;
        let t_session = Instant::now();
        session
            .wait_for("[data-testid=nav-approvals]", Duration::from_secs(60))
            .await;
        let t_nav = Instant::now();
        let paint = session
            .execute(
                "const p = performance.getEntriesByType ? performance.getEntriesByType('paint') : []; \
                 return { origin: performance.timeOrigin, paints: p.map(e => [e.name, e.startTime]) };",
                json!([]),
            )
            .await
            .unwrap_or(Value::Null);
        let origin = paint["origin"].as_f64();
        let fcp = paint["paints"].as_array().and_then(|a| {
            a.iter()
                .find(|e| e[0] == "first-contentful-paint")
                .and_then(|e| e[1].as_f64())
        });
        match (origin, fcp) {
            (Some(o), Some(f)) => fcp_ms.push(o + f - t0_epoch),
            _ => no_fcp += 1,
        }
        session_ms.push(ms(t_session - t0));
        nav_ms.push(ms(t_nav - t0));
        eprintln!(
            "webdriver run {run}: session {:.0} ms, nav {:.0} ms, paint entries {}",
            ms(t_session - t0),
            ms(t_nav - t0),
            paint["paints"]
        );
        session.end().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(driver);
    println!("| from POST /session to (ms) | median | max | runs |\n|---|---|---|---|");
    summary_line(
        "session created (app started under WebKitWebDriver)",
        &session_ms,
    );
    summary_line("`[data-testid=nav-approvals]` found by WebDriver", &nav_ms);
    if fcp_ms.is_empty() {
        println!(
            "\nWebKit reported no `first-contentful-paint` entry in {no_fcp} of {runs} runs \
             (paint timing not available)."
        );
    } else {
        summary_line(
            "page's first-contentful-paint (performance timeline)",
            &fcp_ms,
        );
    }
    Ok(())
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// 2. Memory

/// One process of the app's tree with its memory in KiB.
#[derive(Debug, Clone)]
struct ProcMem {
    pid: u32,
    name: String,
    rss_kib: u64,
    pss_kib: u64,
    /// Anonymous memory (heap, stacks): what is not file-backed, such as SQLite's mmap of the db.
    anon_kib: u64,
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `root` and all its descendants.
fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn proc_mem(pid: u32) -> Option<ProcMem> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    Some(ProcMem {
        pid,
        name,
        rss_kib: field("Rss:"),
        pss_kib: field("Pss:"),
        anon_kib: field("Anonymous:"),
    })
}

fn print_memory(what: &str, root: u32) {
    let procs: Vec<ProcMem> = process_tree(root)
        .into_iter()
        .filter_map(proc_mem)
        .collect();
    println!(
        "\n{what}\n\n| process | pid | RSS MiB | PSS MiB | of which anonymous MiB |\n|---|---|---|---|---|"
    );
    for p in &procs {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            p.name,
            p.pid,
            p.rss_kib as f64 / 1024.0,
            p.pss_kib as f64 / 1024.0,
            p.anon_kib as f64 / 1024.0
        );
    }
    let rss: u64 = procs.iter().map(|p| p.rss_kib).sum();
    let pss: u64 = procs.iter().map(|p| p.pss_kib).sum();
    let anon: u64 = procs.iter().map(|p| p.anon_kib).sum();
    println!(
        "| **total ({} processes)** | | {:.1} | **{:.1}** | {:.1} |",
        procs.len(),
        rss as f64 / 1024.0,
        pss as f64 / 1024.0,
        anon as f64 / 1024.0
    );
}

async fn memory_figures(idle: Duration) -> Result<()> {
    println!("\n## 2. Idle memory (fresh data dir, app started directly)");
    let dir = tempfile::tempdir()?;
    let launched = spawn_app(dir.path(), &[])?;
    let pid = launched.child.id();
    std::thread::spawn(|| watch_paint(Duration::from_secs(60)))
        .join()
        .expect("paint watcher")?;
    tokio::time::sleep(idle).await;
    print_memory(
        &format!(
            "Main window shown, idle {} s after its first paint:",
            idle.as_secs()
        ),
        pid,
    );
    // WM_DELETE_WINDOW is sent again every 2 s until the window is gone (one was seen ignored).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = Instant::now() - Duration::from_secs(10);
    while x11::is_shown(MAIN_TITLE) {
        if Instant::now() > deadline {
            bail!("the main window did not hide after WM_DELETE_WINDOW");
        }
        if sent.elapsed() >= Duration::from_secs(2) {
            x11::request_close(MAIN_TITLE);
            sent = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(idle).await;
    print_memory(
        &format!(
            "Main window closed to the tray (WM_DELETE_WINDOW), idle {} s after:",
            idle.as_secs()
        ),
        pid,
    );
    stop_app(launched)
}

// ---------------------------------------------------------------------------------------------
// 3. Activity with 1,000,000 events

/// SplitMix64 (as the store bench): spreads events over agents and kinds reproducibly.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The store bench's event mix, over registered agents: mostly token traffic, some consent and
/// rejections, 5% with no agent; 1% carry the scope `payroll:read` (the text search's target).
fn fixture_event(i: u64, agents: &[String]) -> NewEvent {
    let r = mix(i);
    let client =
        (!r.is_multiple_of(20)).then(|| agents[((r >> 8) % agents.len() as u64) as usize].clone());
    let (kind, outcome) = match (r >> 16) % 10 {
        0..=4 => (EventKind::TokenRefreshed, Outcome::Ok),
        5 | 6 => (EventKind::TokenIssued, Outcome::Ok),
        7 => (EventKind::ConsentApproved, Outcome::Ok),
        8 => (EventKind::TokenRevoked, Outcome::Ok),
        _ => (EventKind::RequestRejected, Outcome::Rejected),
    };
    let scopes = if (r >> 24).is_multiple_of(100) {
        json!(["payroll:read"])
    } else {
        json!(["repo:read", "issues:write"])
    };
    NewEvent {
        kind,
        outcome,
        client_id: client,
        detail: json!({
            "grant_id": i / 7,
            "access_token_id": format!("{:016x}", mix(i ^ 1)),
            "refresh_token_id": format!("{:016x}", mix(i ^ 2)),
            "scopes": scopes,
            "audience": ["https://api.github.com"],
        }),
    }
}

/// Registers [`AGENTS`] agents through the core and appends `events` events in write
/// transactions of [`EVENTS_PER_WRITE`] through `tx.append` (each event hash-chained).
async fn build_activity_dir(dir: &Path, events: u64) -> Result<Duration> {
    let started = Instant::now();
    let store = Store::open(dir, StoreOptions::default(), Arc::new(SystemClock))?;
    let authority = Authority::new(
        store.clone(),
        Arc::new(SystemClock),
        AuthorityConfig::new("http://127.0.0.1:1"),
    );
    let mut agents = Vec::new();
    for n in 0..AGENTS {
        let reg = authority
            .register(RegistrationRequest {
                redirect_uris: Some(vec!["http://127.0.0.1:8765/callback".into()]),
                token_endpoint_auth_method: Some("client_secret_basic".into()),
                grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
                client_name: Some(format!("Figures agent {n:02}")),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("register an agent: {e:?}"))?;
        agents.push(reg.client_id);
    }
    let agents = Arc::new(agents);
    for start in (0..events).step_by(EVENTS_PER_WRITE as usize) {
        let end = (start + EVENTS_PER_WRITE).min(events);
        let agents = agents.clone();
        store
            .write(move |tx| {
                for i in start..end {
                    tx.append(fixture_event(i, &agents))?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        if start % 200_000 == 0 {
            eprintln!("  {start} events written");
        }
    }
    drop(authority);
    store.close();
    Ok(started.elapsed())
}

/// Installed in the page once. (Wrapping `__TAURI_INTERNALS__.invoke` to time the view's own IPC
/// calls does not take: the object is not writable. IPC round trips are timed by calling the
/// same command from the page instead, see [`IPC_JS`].)
const SETUP_JS: &str = r#"
window.__df = {};
return { heap: !!(performance.memory && performance.memory.usedJSHeapSize) };
"#;

/// Times `events_page` round trips called from the page with the queries the view sends
/// (arguments: an agent's client id): first pages with each filter, then 40 keyset pages down
/// from the newest, then one near the oldest events.
const IPC_JS: &str = r#"
const [agent] = arguments;
const out = { done: false, rows: [], error: null };
window.__dfIpc = out;
const time = async (label, query) => {
  const t = performance.now();
  const v = await window.__TAURI_INTERNALS__.invoke('events_page', { query });
  out.rows.push({ label, ms: performance.now() - t, n: v.length });
  return v;
};
(async () => {
  try {
    await time('first page, no filter', { limit: 100 });
    await time('first page, text "payroll"', { limit: 100, text: 'payroll' });
    await time('first page, one agent', { limit: 100, clientId: agent });
    await time('first page, text "nomatchword" (no event matches)', { limit: 100, text: 'nomatchword' });
    await time('first page, one agent + "nomatchword"', { limit: 100, clientId: agent, text: 'nomatchword' });
    let before;
    for (let i = 0; i < 40; i++) {
      const q = { limit: 100 };
      if (before !== undefined) q.beforeId = before;
      const v = await time('keyset page', q);
      before = v[v.length - 1].id;
    }
    await time('keyset page near the oldest (beforeId 1000)', { limit: 100, beforeId: 1000 });
  } catch (e) { out.error = String((e && e.message) || JSON.stringify(e)); }
  out.done = true;
})();
"#;

/// Clicks the Activity nav and records when the first event row enters the DOM and the frame
/// after (its paint).
const OPEN_ACTIVITY_JS: &str = r#"
const df = window.__df;
df.open = { t0: performance.now(), row: null, frame: null };
const check = () => {
  if (df.open.row === null && document.querySelector('[data-testid=event-row]')) {
    df.open.row = performance.now();
    requestAnimationFrame(() => { df.open.frame = performance.now(); });
    mo.disconnect();
  }
};
const mo = new MutationObserver(check);
mo.observe(document.body, { childList: true, subtree: true });
document.querySelector('[data-testid=nav-activity]').click();
check();
"#;

/// Applies a filter (arguments: "text" or "agent", value) and records when the view shows the
/// answer: nothing is loading any more and either the first row is another event than before
/// the change, or the list was seen reset (loading, or emptied) and now shows rows again or says
/// "No events match.".
const FILTER_JS: &str = r#"
const [which, value] = arguments;
const df = window.__df;
const firstId = () => { const r = document.querySelector('[data-testid=event-row]'); return r ? r.getAttribute('data-event-id') : null; };
const st = { t0: performance.now(), before: firstId(), done: null };
df.filter = st;
const tick = () => {
  if (st.done !== null) return;
  const sentinel = document.querySelector('.sentinel');
  const note = sentinel ? sentinel.textContent.trim() : '';
  const now = firstId();
  if (note.startsWith('Loading')) { st.reset = true; return; }
  if (now === null && st.before !== null) st.reset = true;
  if ((now !== null && (now !== st.before || st.reset)) || (st.reset && note === 'No events match.')) {
    st.done = performance.now(); st.first = now; clearInterval(st.iv);
  }
};
st.iv = setInterval(tick, 2);
if (which === 'text') {
  const el = document.querySelector('[data-testid=activity-search]');
  el.value = value;
  el.dispatchEvent(new Event('input', { bubbles: true }));
} else {
  const el = document.querySelector('[data-testid=activity-agent]');
  el.value = value;
  el.dispatchEvent(new Event('change', { bubbles: true }));
}
"#;

/// Scrolls the list down by one viewport and records when the target offset is reached and the
/// rendered rows cover the viewport (waiting for keyset pages when the loaded rows run out).
const SCROLL_STEP_JS: &str = r#"
const df = window.__df;
const s = document.querySelector('.scroller');
const st = { t0: performance.now(), target: s.scrollTop + s.clientHeight, done: null };
df.step = st;
s.scrollTop = st.target;
const tick = () => {
  if (st.done !== null) return;
  if (Math.abs(s.scrollTop - st.target) > 1) {
    if (s.scrollHeight - s.clientHeight >= st.target) s.scrollTop = st.target;
    return;
  }
  const rows = s.querySelectorAll('[data-testid=event-row]');
  if (!rows.length) return;
  const box = s.getBoundingClientRect();
  let top = Infinity, bottom = -Infinity;
  for (const r of rows) { const b = r.getBoundingClientRect(); top = Math.min(top, b.top); bottom = Math.max(bottom, b.bottom); }
  if (top <= box.top + 1 && bottom >= box.bottom - 1) {
    st.done = performance.now();
    st.domRows = rows.length;
    const inner = s.querySelector('.rows');
    st.feedRows = inner ? Math.round(inner.offsetHeight / 44) : null;
    st.heap = performance.memory ? performance.memory.usedJSHeapSize : null;
    clearInterval(st.iv);
  }
};
st.iv = setInterval(tick, 2);
"#;

/// Scrolls by `arguments[1]` px per animation frame for `arguments[0]` ms, recording each
/// frame's timestamp.
const SMOOTH_JS: &str = r#"
const [duration, px] = arguments;
const df = window.__df;
const s = document.querySelector('.scroller');
const fr = { frames: [], start: performance.now(), end: null, top0: s.scrollTop, rows0: Math.round(s.querySelector('.rows').offsetHeight / 44) };
df.smooth = fr;
const step = (t) => {
  fr.frames.push(t);
  s.scrollTop += px;
  if (t - fr.start < duration) requestAnimationFrame(step); else { fr.end = performance.now(); fr.top1 = s.scrollTop; fr.rows1 = Math.round(s.querySelector('.rows').offsetHeight / 44); }
};
requestAnimationFrame(step);
"#;

async fn poll_js(session: &Session, script: &str, timeout: Duration, what: &str) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = session
            .execute(script, json!([]))
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e:?}"))?;
        if !v.is_null() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The running app launched by WebKitWebDriver on `data_dir` (found by executable and args).
fn app_pid_on(data_dir: &Path) -> Option<u32> {
    let bin = std::fs::canonicalize(desktop::desktop_bin()).ok()?;
    let dir = data_dir.display().to_string();
    all_pids().into_iter().find(|p| {
        std::fs::read_link(format!("/proc/{p}/exe")).ok().as_deref() == Some(bin.as_path())
            && std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&dir))
                .unwrap_or(false)
    })
}

async fn activity_figures(args: &Args) -> Result<()> {
    println!("\n## 3. Activity with {} audit events", args.events);
    let temp = tempfile::tempdir()?;
    let dir = args
        .activity_dir
        .clone()
        .unwrap_or_else(|| temp.path().join("activity"));
    if dir.join(gatehouse_core::store::DB_FILE).exists() {
        println!(
            "\nReusing the data dir {} (built by an earlier run).",
            dir.display()
        );
    } else {
        let took = build_activity_dir(&dir, args.events).await?;
        println!(
            "\nData dir built through the store API ({AGENTS} agents registered, {} events appended \
             in write transactions of {EVENTS_PER_WRITE}): {:.1} s ({:.0} events/s).",
            args.events,
            took.as_secs_f64(),
            args.events as f64 / took.as_secs_f64()
        );
    }
    let size: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("Data dir size: {:.0} MiB.", size as f64 / 1048576.0);
    let t = Instant::now();
    let verify = gatehouse_e2e::gatehouse_command(&dir, &["audit", "verify"]).output()?;
    println!(
        "`gatehouse audit verify`: {:.1} s, exit {}, said: {}",
        t.elapsed().as_secs_f64(),
        verify.status,
        String::from_utf8_lossy(&verify.stdout).trim()
    );
    if !verify.status.success() {
        bail!(
            "audit verify failed: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }

    let driver = TauriDriver::start().await;
    let bin = desktop::desktop_bin();
    let app_args = vec![
        "--data-dir".to_owned(),
        dir.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let t0 = Instant::now();
    let session = Session::start(&driver, &bin, &app_args).await;
    session
        .wait_for("[data-testid=nav-approvals]", Duration::from_secs(120))
        .await;
    println!(
        "Launch on this data dir through tauri-driver, POST /session to nav-approvals found: {:.0} ms.",
        ms(t0.elapsed())
    );
    let result = activity_session(&session, args, &dir).await;
    session.end().await;
    drop(driver);
    result
}

async fn activity_session(session: &Session, args: &Args, dir: &Path) -> Result<()> {
    session
        .execute(SETUP_JS, json!([]))
        .await
        .map_err(|e| anyhow::anyhow!("set up the page: {e:?}"))?;

    // Click to first row.
    session
        .execute(OPEN_ACTIVITY_JS, json!([]))
        .await
        .map_err(|e| anyhow::anyhow!("open Activity: {e:?}"))?;
    let open = poll_js(
        session,
        "const o = window.__df.open; return o.frame === null ? null : o;",
        Duration::from_secs(60),
        "the first event row",
    )
    .await?;
    let t0 = open["t0"].as_f64().unwrap_or(0.0);
    println!("\n| Activity, measured in the page (performance.now) | ms |\n|---|---|");
    println!(
        "| click on Activity → first `event-row` in the DOM | {:.0} |",
        open["row"].as_f64().unwrap_or(f64::NAN) - t0
    );
    println!(
        "| click on Activity → the animation frame after it (painted) | {:.0} |",
        open["frame"].as_f64().unwrap_or(f64::NAN) - t0
    );
    // Let the first page settle (the fill-the-viewport effect may ask for a second page).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let agent = session
        .execute(
            "const o = document.querySelectorAll('[data-testid=activity-agent] option'); \
             return o.length > 1 ? o[1].value : null;",
            json!([]),
        )
        .await
        .unwrap_or(Value::Null);
    let agent = agent
        .as_str()
        .context("the agent filter lists no agent")?
        .to_owned();
    for (label, which, value) in [
        (
            format!("text search \"{RARE_WORD}\" (1% of events)"),
            "text",
            RARE_WORD.to_owned(),
        ),
        (
            "text search back to empty (all events)".to_owned(),
            "text",
            String::new(),
        ),
        (
            "agent filter (one of 20 agents, ~4.75% of events)".to_owned(),
            "agent",
            agent.clone(),
        ),
        (
            "text search \"nomatchword\" with the agent filter on (no event matches)".to_owned(),
            "text",
            "nomatchword".to_owned(),
        ),
        (
            "text search cleared (agent filter still on)".to_owned(),
            "text",
            String::new(),
        ),
        (
            "agent filter back to all agents".to_owned(),
            "agent",
            String::new(),
        ),
    ] {
        session
            .execute(FILTER_JS, json!([which, value]))
            .await
            .map_err(|e| anyhow::anyhow!("apply a filter: {e:?}"))?;
        let f = poll_js(
            session,
            "const f = window.__df.filter; return f.done === null ? null : f;",
            Duration::from_secs(60),
            &label,
        )
        .await?;
        println!(
            "| {label}: change → rows shown (view's 250 ms search debounce included for text) | {:.0} |",
            f["done"].as_f64().unwrap_or(f64::NAN) - f["t0"].as_f64().unwrap_or(0.0)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // IPC round trips of the queries the view sends, called from the page.
    session
        .execute(IPC_JS, json!([agent]))
        .await
        .map_err(|e| anyhow::anyhow!("time events_page: {e:?}"))?;
    let ipc = poll_js(
        session,
        "const o = window.__dfIpc; return o.done ? o : null;",
        Duration::from_secs(300),
        "the events_page timings",
    )
    .await?;
    if let Some(err) = ipc["error"].as_str() {
        bail!("events_page failed: {err}");
    }
    let rows = ipc["rows"].as_array().cloned().unwrap_or_default();
    println!(
        "\n`events_page` IPC round trips, called from the page with the view's queries (limit 100):\n"
    );
    println!("| query | events | ms |\n|---|---|---|");
    let mut keyset = Vec::new();
    for r in &rows {
        let label = r["label"].as_str().unwrap_or("");
        let ms = r["ms"].as_f64().unwrap_or(f64::NAN);
        if label == "keyset page" {
            keyset.push(ms);
        } else {
            println!("| {label} | {} | {ms:.1} |", r["n"]);
        }
    }
    println!(
        "| 40 keyset pages down from the newest (`beforeId` = last id of the previous page): p50 / p99 / max | 100 each | {:.1} / {:.1} / {:.1} |",
        median(&keyset),
        percentile(&keyset, 99.0),
        max(&keyset)
    );

    // Page-down scrolls.
    let mut step_ms = Vec::new();
    let mut dom_rows = Vec::new();
    let mut feed_rows = 0u64;
    let mut heaps = Vec::new();
    for i in 0..args.scrolls {
        session
            .execute(SCROLL_STEP_JS, json!([]))
            .await
            .map_err(|e| anyhow::anyhow!("scroll: {e:?}"))?;
        let st = poll_js(
            session,
            "const s = window.__df.step; return s.done === null ? null : s;",
            Duration::from_secs(60),
            &format!("scroll {i} to settle"),
        )
        .await?;
        step_ms.push(st["done"].as_f64().unwrap_or(f64::NAN) - st["t0"].as_f64().unwrap_or(0.0));
        dom_rows.push(st["domRows"].as_f64().unwrap_or(f64::NAN));
        feed_rows = st["feedRows"].as_u64().unwrap_or(feed_rows);
        if let Some(h) = st["heap"].as_f64() {
            heaps.push(h);
        }
    }
    println!(
        "\n{} page-down scrolls (scrollTop += clientHeight, then wait until the offset is reached and \
         rendered rows cover the viewport):\n",
        args.scrolls
    );
    println!("| metric | p50 | p99 | max |\n|---|---|---|---|");
    println!(
        "| time to settle per scroll (ms) | {:.1} | {:.1} | {:.1} |",
        median(&step_ms),
        percentile(&step_ms, 99.0),
        max(&step_ms)
    );
    println!(
        "| `event-row` elements in the DOM | {:.0} | {:.0} | {:.0} |",
        median(&dom_rows),
        percentile(&dom_rows, 99.0),
        max(&dom_rows)
    );
    println!(
        "\nEvents loaded into the feed after the scrolls: {feed_rows} (held in the JS array; only \
         the visible window is in the DOM)."
    );
    if heaps.is_empty() {
        println!("JS heap: `performance.memory` is not available in WebKitGTK; not measured.");
    } else {
        println!(
            "JS heap (performance.memory.usedJSHeapSize): first {:.1} MiB, last {:.1} MiB.",
            heaps[0] / 1048576.0,
            heaps[heaps.len() - 1] / 1048576.0
        );
    }

    // The frame rate with nothing to do, as a baseline for the scroll's.
    session
        .execute(SMOOTH_JS, json!([3000, 0]))
        .await
        .map_err(|e| anyhow::anyhow!("idle frames: {e:?}"))?;
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let idle = session
        .execute("return window.__df.smooth.frames;", json!([]))
        .await
        .unwrap_or(Value::Null);
    let idle: Vec<f64> = idle
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let idle: Vec<f64> = idle.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "\nrequestAnimationFrame with no scrolling (3 s, baseline): {} frames, interval p50 {:.1} ms, max {:.1} ms.",
        idle.len() + 1,
        median(&idle),
        max(&idle)
    );

    // Smooth scroll timed by requestAnimationFrame.
    let duration_ms = args.smooth_secs * 1000;
    session
        .execute(SMOOTH_JS, json!([duration_ms, 88]))
        .await
        .map_err(|e| anyhow::anyhow!("smooth scroll: {e:?}"))?;
    tokio::time::sleep(Duration::from_millis(duration_ms + 1000)).await;
    let fr = session
        .execute("return window.__df.smooth;", json!([]))
        .await
        .unwrap_or(Value::Null);
    let frames: Vec<f64> = fr["frames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if frames.len() < 2 {
        println!(
            "\nrequestAnimationFrame fired {} times in {} s under Xvfb: no frame timing.",
            frames.len(),
            args.smooth_secs
        );
    } else {
        let intervals: Vec<f64> = frames.windows(2).map(|w| w[1] - w[0]).collect();
        let long = intervals.iter().filter(|&&d| d > 50.0).count();
        let pages =
            (fr["rows1"].as_f64().unwrap_or(0.0) - fr["rows0"].as_f64().unwrap_or(0.0)) / 100.0;
        println!(
            "\nScripted smooth scroll, 88 px (2 rows) per animation frame for {} s: {} frames, \
             {:.0} px scrolled, {pages:.0} keyset pages loaded meanwhile.\n",
            args.smooth_secs,
            frames.len(),
            fr["top1"].as_f64().unwrap_or(0.0) - fr["top0"].as_f64().unwrap_or(0.0)
        );
        println!(
            "| frame interval (ms) | p50 | p99 | max | frames > 50 ms |\n|---|---|---|---|---|"
        );
        println!(
            "| requestAnimationFrame to requestAnimationFrame | {:.1} | {:.1} | {:.1} | {long} of {} |",
            median(&intervals),
            percentile(&intervals, 99.0),
            max(&intervals),
            intervals.len()
        );
    }

    if let Some(pid) = app_pid_on(dir) {
        print_memory(
            "Memory of the app on the 1M-event data dir after the scrolls:",
            pid,
        );
    } else {
        println!("\n(The app's process under WebKitWebDriver was not found: no memory reading.)");
    }
    Ok(())
}
