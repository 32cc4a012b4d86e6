//! `gatehouse-load`: HTTP load tool for the Gatehouse authorization server.
//!
//! By default it starts its own `gatehouse serve --approver jsonl` on a temp data dir and a free
//! loopback port, registers a confidential client, approves one consent with `remember: always`,
//! and then measures, with keep-alive HTTP/1.1 connections:
//!
//! 0. approval latency over CIBA, one request at a time (`--approvals N` rounds): the time from
//!    `POST /bc-authorize` to its `approval_requested` line on the jsonl approver's stdout, and
//!    from writing the decision on its stdin to the poll of `POST /token` that returns the token;
//! 1. token introspection (`POST /introspect`, Basic auth, live access tokens) for a fixed time
//!    after a warm-up;
//! 2. `/authorize` with remembered consent, which mints the codes for the next phase (each with
//!    its own PKCE pair);
//! 3. authorization-code exchange (`POST /token`), each one a write transaction with its
//!    hash-chained audit event.
//!
//! 4. with `--phases gateway` (it needs an unlocked OS keyring, as in the headless session
//!    `scripts/test.sh` sets up): a minimal upstream API on loopback, a connection to it in the
//!    vault and an agent token for it, then the same GET straight to the upstream and through
//!    `/gateway/{connection}/...` (allowed by the default policy), each for --duration after a
//!    warm-up; the difference is the gateway's added latency.
//! 5. with `--phases mcp`: `mcp-test-server` (next to this executable) added to the server with
//!    `gatehouse mcp add`, an agent token for its `/mcp/{name}` resource (consent approved on the
//!    jsonl stdin), then the same `tools/call` of its read-only `echo` over stdio straight to a
//!    child of this tool and through Gatehouse (rmcp clients, `--concurrency` calls in flight on
//!    one connection), each for --duration after a warm-up; the difference is what Gatehouse
//!    adds to an MCP tool call.
//!
//! It prints a table (or `--json`) with req/s, latency percentiles and the CPU time the server
//! and the load generator used during each phase. `--issuer URL` measures introspection against a
//! server that is already running instead.

#[path = "gatehouse-load/client.rs"]
mod client;
#[path = "gatehouse-load/gateway.rs"]
mod gateway;
#[path = "gatehouse-load/mcp.rs"]
mod mcp;
#[path = "gatehouse-load/server.rs"]
mod server;
#[path = "gatehouse-load/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::{Parser, ValueEnum};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode, Uri};
use rand::RngCore;
use sha2::{Digest, Sha256};

use client::{SetupClient, Target, connect_all, form, json, location, request, run_workers, send};
use server::ServerProcess;
use stats::{CpuUse, Summary, WorkerOut, fmt_int, fmt_us};

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
const SCOPE: &str = "read";

const INTROSPECT_TARGET_RPS: f64 = 20_000.0;
const INTROSPECT_TARGET_P99_US: u32 = 2_000;
const EXCHANGE_TARGET_RPS: f64 = 5_000.0;
const EXCHANGE_TARGET_P99_US: u32 = 10_000;
const APPROVAL_TARGET_P99_US: u32 = 20_000;
/// The most the gateway may add to a call at p99, in microseconds.
const GATEWAY_TARGET_ADDED_P99_US: i64 = 1_000;
/// The phase names of the gateway measurement.
const GATEWAY_DIRECT: &str = "upstream direct (GET)";
const GATEWAY_VIA: &str = "gateway (GET)";
/// The most Gatehouse may add to an MCP `tools/call` at p99, in microseconds.
const MCP_TARGET_ADDED_P99_US: i64 = 2_000;
/// The phase names of the MCP measurement.
const MCP_DIRECT: &str = "mcp stdio direct (tools/call)";
const MCP_VIA: &str = "mcp via gatehouse (tools/call)";
/// The MCP server's name in Gatehouse (`/mcp/bench`, scope `mcp:bench`).
const MCP_SERVER: &str = "bench";

const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// The phases of the approval-latency measurement, one row each.
const APPROVAL_APPEARS: &str = "approval appears (CIBA)";
const APPROVAL_RECORDED: &str = "decision recorded (CIBA)";
const APPROVAL_TOKEN: &str = "decision -> token (CIBA)";
/// Unmeasured approval rounds before the measured ones.
const APPROVAL_WARMUP_ROUNDS: usize = 3;

/// Measures Gatehouse's HTTP server on loopback: approval latency (CIBA), introspection and
/// authorization-code exchange.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Always benchmark release builds:\n  cargo build --release -p gatehouse-cli -p gatehouse-e2e --bin gatehouse --bin gatehouse-load --bin mcp-test-server\n  target/release/gatehouse-load\n  target/release/gatehouse-load --phases mcp -c 1    # what Gatehouse adds to an MCP tools/call (target p99 <= 2 ms)\n  target/release/gatehouse-load --phases mcp -c 16   # MCP calls per second at concurrency 16"
)]
struct Args {
    /// The `gatehouse` binary to start [default: `gatehouse` next to this executable].
    #[arg(long, value_name = "PATH")]
    gatehouse: Option<PathBuf>,

    /// The MCP server of `--phases mcp` [default: `mcp-test-server` next to this executable].
    #[arg(long, value_name = "PATH")]
    mcp_test_server: Option<PathBuf>,

    /// Measure a server that is already running (introspection only) instead of starting one.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,

    /// With --issuer: an existing confidential client (client_secret_basic). Default: register one.
    #[arg(long, requires = "client_secret", requires = "issuer")]
    client_id: Option<String>,

    /// With --issuer: the secret of --client-id.
    #[arg(long, requires = "client_id")]
    client_secret: Option<String>,

    /// With --issuer: access tokens of that client to introspect (repeatable). Without any, an
    /// unknown token is introspected and `{"active":false}` counts as success.
    #[arg(long = "token", value_name = "TOKEN", requires = "issuer")]
    tokens: Vec<String>,

    /// With --issuer: the server's process id, to report its CPU time.
    #[arg(long, requires = "issuer")]
    server_pid: Option<u32>,

    /// Concurrent keep-alive connections (one request in flight on each); with --phases mcp,
    /// concurrent calls on one MCP connection.
    #[arg(short, long, default_value_t = 16)]
    concurrency: usize,

    /// Seconds to measure each timed phase.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,

    /// Seconds of unmeasured introspection load before the measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// How many different live access tokens the introspection phase cycles through.
    #[arg(long = "live-tokens", default_value_t = 4)]
    live_tokens: usize,

    /// Authorization codes to mint for the exchange phase, which ends when they run out or after
    /// --duration [default: enough for --duration at 10,000 exchanges/s]. Codes live 60 s, so
    /// minting also stops after --mint-limit seconds.
    #[arg(long)]
    codes: Option<usize>,

    /// Longest time spent minting codes, in seconds (codes expire 60 s after minting).
    #[arg(long, default_value_t = 30.0)]
    mint_limit: f64,

    /// CIBA approval rounds to time, one at a time (0 skips the approval-latency phase).
    #[arg(long, value_name = "N", default_value_t = 200)]
    approvals: usize,

    /// Phases to run (comma-separated): approvals, introspect, exchange, gateway, mcp.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "approvals,introspect,exchange"
    )]
    phases: Vec<Phase>,

    /// Load generator runtime: one thread (leaves the most CPU to the server) or a thread pool.
    #[arg(long, value_enum, default_value_t = Runtime::Current)]
    runtime: Runtime,

    /// Worker threads with `--runtime multi`.
    #[arg(long, default_value_t = 2)]
    load_threads: usize,

    /// Extra argument for `gatehouse serve` (repeatable), e.g. `--serve-arg=--approval-timeout=60`.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,

    /// Write every measured request to this CSV file (`phase,worker,start_us,latency_us`, start
    /// relative to the phase's start), to see stalls over time.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,

    /// Exit with status 1 when a measured figure misses its target.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Approval latency over CIBA (run first, one request at a time).
    Approvals,
    Introspect,
    Exchange,
    /// Gateway overhead: GETs straight to a loopback upstream, then through the gateway (needs
    /// an unlocked OS keyring).
    Gateway,
    /// MCP gateway overhead: `tools/call echo` on `mcp-test-server` over stdio directly, then
    /// through Gatehouse's `/mcp/NAME`.
    Mcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// Tokio current-thread runtime: the generator uses at most one core.
    Current,
    /// Tokio multi-thread runtime with --load-threads workers.
    Multi,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match args.runtime {
        Runtime::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.load_threads.max(1))
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-load: cannot start the tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
                );
            } else {
                report.print();
            }
            if args.check && !report.all_targets_met() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("gatehouse-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

// ---- orchestration ---------------------------------------------------------------------------

struct Report {
    issuer: String,
    concurrency: usize,
    runtime: String,
    cpus: usize,
    duration: f64,
    notes: Vec<String>,
    phases: Vec<Summary>,
}

/// A registered confidential client and its ready-made Basic header.
struct Client {
    id: String,
    basic: HeaderValue,
}

/// CPU sampling context for the phases.
struct Cpu {
    pid: Option<u32>,
    ticks_per_sec: f64,
}

async fn run(args: &Args) -> Result<Report> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let runtime = match args.runtime {
        Runtime::Current => "tokio current-thread".to_owned(),
        Runtime::Multi => format!("tokio multi-thread ({} workers)", args.load_threads.max(1)),
    };
    let mut notes = Vec::new();
    let mut phases = Vec::new();
    if let Some(path) = &args.trace {
        std::fs::write(path, "phase,worker,start_us,latency_us\n")
            .with_context(|| format!("create {}", path.display()))?;
    }

    let mut server = None;
    let target = match &args.issuer {
        Some(issuer) => Target::from_issuer(issuer)?,
        None => {
            let bin = gatehouse_bin(args)?;
            eprintln!("gatehouse-load: starting {} serve", bin.display());
            let s = ServerProcess::start(&bin, &args.serve_args).await?;
            let t = Target::from_issuer(&s.issuer)?;
            server = Some(s);
            t
        }
    };
    let cpu = Cpu {
        pid: server.as_ref().map(ServerProcess::pid).or(args.server_pid),
        ticks_per_sec: server::clock_ticks(),
    };
    eprintln!("gatehouse-load: server at {}", target.issuer);

    let mut setup = SetupClient::connect(&target).await?;
    let client = match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Client {
            id: id.clone(),
            basic: basic(id, secret)?,
        },
        _ => register(&mut setup).await?,
    };

    // Live access tokens to introspect.
    let mut expect_active = true;
    let tokens = match server.as_mut() {
        Some(server) => {
            let mut tokens = Vec::with_capacity(args.live_tokens.max(1));
            let first = first_consent(&mut setup, server, &client).await?;
            tokens.push(first);
            while tokens.len() < args.live_tokens.max(1) {
                let (code, verifier) = authorize_remembered(&mut setup, &client).await?;
                tokens.push(exchange(&mut setup, &client, &code, &verifier).await?);
            }
            tokens
        }
        None if !args.tokens.is_empty() => args.tokens.clone(),
        None => {
            expect_active = false;
            notes.push("no --token given: introspected an unknown token; {\"active\":false} counted as success".into());
            vec!["gth_at_gatehouse-load-unknown-token".to_owned()]
        }
    };

    if args.phases.contains(&Phase::Approvals) && args.approvals > 0 {
        match server.as_mut() {
            Some(server) => {
                let (rows, note) = approval_phase(args, &target, server, &cpu).await?;
                phases.extend(rows);
                notes.push(note);
            }
            None => notes.push("approval latency skipped: it needs the jsonl approver of a server this tool starts (run without --issuer)".into()),
        }
    }
    if args.phases.contains(&Phase::Introspect) {
        eprintln!(
            "gatehouse-load: introspection, {} connections, {:.0} s warm-up + {:.0} s",
            args.concurrency, args.warmup, args.duration
        );
        phases.push(introspect_phase(args, &target, &client, &tokens, expect_active, &cpu).await?);
    }
    if args.phases.contains(&Phase::Exchange) {
        if server.is_some() {
            let (mint, bodies, minted_at) = mint_phase(args, &target, &client, &cpu).await?;
            phases.push(mint);
            eprintln!(
                "gatehouse-load: exchanging {} codes, {} connections, up to {:.0} s",
                bodies.len(),
                args.concurrency,
                args.duration
            );
            phases.push(exchange_phase(args, &target, &client, bodies, minted_at, &cpu).await?);
        } else {
            notes.push("code exchange skipped: it needs consent through the jsonl approver of a server this tool starts (run without --issuer)".into());
        }
    }

    if args.phases.contains(&Phase::Gateway) {
        match server.as_mut() {
            Some(server) => {
                let bin = gatehouse_bin(args)?;
                let (rows, note) =
                    gateway_phase(args, &target, server, &mut setup, &client, &cpu, &bin).await?;
                phases.extend(rows);
                notes.push(note);
            }
            None => notes.push("gateway skipped: it adds a connection to the data dir of a server this tool starts (run without --issuer)".into()),
        }
    }

    if args.phases.contains(&Phase::Mcp) {
        match server.as_mut() {
            Some(server) => {
                let bin = gatehouse_bin(args)?;
                let (rows, note) =
                    mcp_phase(args, &target, server, &mut setup, &client, &bin).await?;
                phases.extend(rows);
                notes.push(note);
            }
            None => notes.push("mcp skipped: it adds an MCP server to the data dir of a server this tool starts (run without --issuer)".into()),
        }
    }

    if let Some(mut s) = server {
        let how = s.stop()?;
        eprintln!("gatehouse-load: server {how}");
    }
    Ok(Report {
        issuer: target.issuer,
        concurrency: args.concurrency,
        runtime,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        duration: args.duration,
        notes,
        phases,
    })
}

fn gatehouse_bin(args: &Args) -> Result<PathBuf> {
    let bin = match &args.gatehouse {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .join(format!("gatehouse{}", std::env::consts::EXE_SUFFIX)),
    };
    if !bin.exists() {
        bail!(
            "{} does not exist: build it (cargo build --release -p gatehouse-cli) or pass --gatehouse PATH",
            bin.display()
        );
    }
    Ok(bin)
}

// ---- setup (not measured) -------------------------------------------------------------------

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(id: &str, secret: &str) -> Result<HeaderValue> {
    // RFC 6749 §2.3.1: form-urlencode each part, then Base64.
    let raw = format!("{}:{}", enc(id), enc(secret));
    Ok(HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(raw)
    ))?)
}

/// A fresh PKCE pair (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_uri(client_id: &str, challenge: &str, state: &str) -> String {
    format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256&scope={}",
        enc(client_id),
        enc(REDIRECT_URI),
        enc(state),
        challenge,
        enc(SCOPE)
    )
}

/// The code from a redirect to the client, after checking `state` (and reporting `error`).
fn code_from_redirect(loc: &str, state: &str) -> Result<String> {
    let url = url::Url::parse(loc).with_context(|| format!("redirect {loc}"))?;
    let (mut code, mut got_state, mut error) = (None, None, None);
    for (k, v) in url.query_pairs() {
        match &*k {
            "code" => code = Some(v.into_owned()),
            "state" => got_state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            _ => {}
        }
    }
    if let Some(e) = error {
        bail!("the authorization failed: {loc} ({e})");
    }
    if got_state.as_deref() != Some(state) {
        bail!("the redirect carries the wrong state: {loc}");
    }
    code.with_context(|| format!("the redirect has no code: {loc}"))
}

async fn register(setup: &mut SetupClient) -> Result<Client> {
    let body = serde_json::json!({
        "client_name": "gatehouse-load",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    register_with(setup, body).await
}

/// Registers a confidential client with this metadata.
async fn register_with(setup: &mut SetupClient, body: serde_json::Value) -> Result<Client> {
    let (parts, bytes) = setup
        .call(
            Method::POST,
            "/register",
            None,
            Some(json()),
            body.to_string(),
        )
        .await?;
    if parts.status != StatusCode::CREATED {
        bail!(
            "POST /register answered {} {}",
            parts.status,
            client::snippet(&bytes)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).context("registration response")?;
    let id = v["client_id"].as_str().context("no client_id")?;
    let secret = v["client_secret"].as_str().context("no client_secret")?;
    Ok(Client {
        id: id.to_owned(),
        basic: basic(id, secret)?,
    })
}

/// The first authorization: file a consent, approve it with remember=always through the jsonl
/// approver, follow the waiting page, and exchange the code. Returns an access token.
async fn first_consent(
    setup: &mut SetupClient,
    server: &mut ServerProcess,
    client: &Client,
) -> Result<String> {
    let (verifier, challenge) = pkce();
    let uri = authorize_uri(&client.id, &challenge, "setup");
    consent_token(setup, server, client, &uri, "setup", &verifier).await
}

/// Follows `/authorize?...` (`uri`), approving its consent through the jsonl approver with
/// remember=always when one is asked, and exchanges the code. Returns an access token.
async fn consent_token(
    setup: &mut SetupClient,
    server: &mut ServerProcess,
    client: &Client,
    uri: &str,
    state: &str,
    verifier: &str,
) -> Result<String> {
    let (parts, body) = setup
        .call(Method::GET, uri, None, None, Bytes::new())
        .await?;
    let mut loc = location(&parts, &body, "GET /authorize")?;
    if !loc.starts_with(REDIRECT_URI) {
        // A waiting page: approve, then poll it until it sends us on to the client.
        let waiting = url::Url::parse(&loc).with_context(|| format!("waiting page {loc}"))?;
        let path = waiting.path().to_owned();
        server.approve_next_always().await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (parts, body) = setup
                .call(Method::GET, &path, None, None, Bytes::new())
                .await?;
            if parts.status == StatusCode::OK {
                if Instant::now() > deadline {
                    bail!("the waiting page {path} did not move on within 20 s of the approval");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            loc = location(&parts, &body, "the waiting page")?;
            break;
        }
    }
    let code = code_from_redirect(&loc, state)?;
    exchange(setup, client, &code, verifier).await
}

/// `/authorize` answered straight from the remembered consent: (code, verifier).
async fn authorize_remembered(
    setup: &mut SetupClient,
    client: &Client,
) -> Result<(String, String)> {
    let (verifier, challenge) = pkce();
    let (parts, body) = setup
        .call(
            Method::GET,
            &authorize_uri(&client.id, &challenge, "again"),
            None,
            None,
            Bytes::new(),
        )
        .await?;
    let loc = location(&parts, &body, "GET /authorize (remembered consent)")?;
    if !loc.starts_with(REDIRECT_URI) {
        bail!("the remembered consent was not used: /authorize sent us to {loc}");
    }
    Ok((code_from_redirect(&loc, "again")?, verifier))
}

fn token_body(code: &str, verifier: &str) -> String {
    format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        enc(code),
        enc(REDIRECT_URI),
        verifier
    )
}

async fn exchange(
    setup: &mut SetupClient,
    client: &Client,
    code: &str,
    verifier: &str,
) -> Result<String> {
    let (parts, body) = setup
        .call(
            Method::POST,
            "/token",
            Some(&client.basic),
            Some(form()),
            token_body(code, verifier),
        )
        .await?;
    if parts.status != StatusCode::OK {
        bail!(
            "POST /token answered {} {}",
            parts.status,
            client::snippet(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("token response")?;
    Ok(v["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned())
}

// ---- CPU sampling ---------------------------------------------------------------------------

type Threads = std::collections::HashMap<u32, (String, u64)>;

struct CpuMark {
    server: Option<u64>,
    load: Option<u64>,
    machine: Option<u64>,
    threads: Threads,
}

impl Cpu {
    fn mark(&self) -> CpuMark {
        CpuMark {
            server: self.pid.and_then(server::process_ticks),
            load: server::self_ticks(),
            machine: server::machine_busy_ticks(),
            threads: self.pid.map(server::thread_ticks).unwrap_or_default(),
        }
    }

    fn between(&self, a: &CpuMark, b: &CpuMark) -> (Option<CpuUse>, Vec<(String, f64)>) {
        let secs = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / self.ticks_per_sec),
            _ => None,
        };
        let cpu = match (secs(a.server, b.server), secs(a.load, b.load)) {
            (Some(server_secs), Some(load_secs)) => Some(CpuUse {
                server_secs,
                load_secs,
                other_secs: secs(a.machine, b.machine)
                    .map(|m| (m - server_secs - load_secs).max(0.0)),
            }),
            _ => None,
        };
        (
            cpu,
            server::thread_delta(&a.threads, &b.threads, self.ticks_per_sec),
        )
    }
}

/// Appends a phase's requests to the `--trace` file (created with its header at the start).
fn append_trace(args: &Args, phase: &str, outs: &[WorkerOut]) -> Result<()> {
    let Some(path) = &args.trace else {
        return Ok(());
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    stats::write_trace(&mut w, phase, outs)?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

// ---- phase 0: approval latency (CIBA) --------------------------------------------------------

/// When each step of one approval round ended.
struct ApprovalRound {
    /// `POST /bc-authorize` about to be sent.
    asked: Instant,
    /// Its `approval_requested` line read from the server's stdout.
    appeared: Instant,
    /// The decision about to be written to the server's stdin.
    decided: Instant,
    /// The `approval_decided` line read from the server's stdout.
    recorded: Instant,
    /// The poll that returned the token answered.
    token: Instant,
    /// Polls that came back `authorization_pending` or `slow_down` first.
    extra_polls: u32,
}

/// Registers a confidential CIBA client, then times `--approvals` rounds one at a time:
/// `/bc-authorize` → `approval_requested` on stdout → `{"approve":ID}` on stdin →
/// `approval_decided` on stdout → one poll of `/token` returning the token. Returns the three
/// rows and a note on how it was measured.
async fn approval_phase(
    args: &Args,
    target: &Target,
    server: &mut ServerProcess,
    cpu: &Cpu,
) -> Result<(Vec<Summary>, String)> {
    let mut setup = SetupClient::connect(target).await?;
    let agent = register_with(
        &mut setup,
        serde_json::json!({
            "client_name": "gatehouse-load ciba",
            "grant_types": [CIBA_GRANT],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await?;
    let details = enc(&serde_json::json!([{
        "type": "message_send",
        "channel": "email",
        "recipients": ["alex@contractor.example"],
        "subject": "x",
    }])
    .to_string());
    let n = args.approvals;
    eprintln!(
        "gatehouse-load: approval latency (CIBA), {APPROVAL_WARMUP_ROUNDS} warm-up + {n} rounds one at a time"
    );
    for i in 0..APPROVAL_WARMUP_ROUNDS {
        approval_round(
            &mut setup,
            server,
            &agent,
            &details,
            &format!("warm-up {i}"),
        )
        .await
        .context("approval warm-up round")?;
    }

    let start = Instant::now();
    let origin = args.trace.is_some().then_some(start);
    let mut outs: [WorkerOut; 3] = std::array::from_fn(|_| WorkerOut::new(n, origin));
    let before = cpu.mark();
    let (mut extra_polls, mut failed_in_a_row) = (0u32, 0);
    for i in 0..n {
        match approval_round(&mut setup, server, &agent, &details, &format!("round {i}")).await {
            Ok(r) => {
                failed_in_a_row = 0;
                extra_polls += r.extra_polls;
                outs[0].record(r.asked, r.appeared);
                outs[1].record(r.decided, r.recorded);
                outs[2].record(r.decided, r.token);
            }
            Err(e) => {
                for o in &mut outs {
                    o.fail(|| format!("round {i}: {e:#}"));
                }
                failed_in_a_row += 1;
                if failed_in_a_row == 3 {
                    bail!("three approval rounds in a row failed; the last: {e:#}");
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let after = cpu.mark();
    let (cpu_use, threads) = cpu.between(&before, &after);
    let [appears, recorded, token] = outs;
    append_trace(args, "approval_appears", std::slice::from_ref(&appears))?;
    append_trace(args, "decision_recorded", std::slice::from_ref(&recorded))?;
    append_trace(args, "decision_token", std::slice::from_ref(&token))?;
    let rows = [
        (APPROVAL_APPEARS, appears),
        (APPROVAL_RECORDED, recorded),
        (APPROVAL_TOKEN, token),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, out))| {
        // The CPU figures cover the whole phase: show them once.
        let (cpu_use, threads) = if i == 0 {
            (cpu_use, threads.clone())
        } else {
            (None, Vec::new())
        };
        let mut s = Summary::from_workers(name, vec![out], elapsed, cpu_use, threads);
        s.latency_only = true;
        s
    })
    .collect();
    let mut note = format!(
        "approval latency: {n} CIBA rounds one at a time after {APPROVAL_WARMUP_ROUNDS} warm-up rounds; \
         \"appears\" ends when the approval_requested line is read from the server's stdout; the \
         token poll is sent once approval_decided is printed (the server answers slow_down to a \
         poll within {} ms of the previous one, so an early authorization_pending would cost \
         that much)",
        1000 - 200
    );
    if extra_polls > 0 {
        note.push_str(&format!(
            "; {extra_polls} polls after approval_decided still came back pending or slow_down"
        ));
    }
    Ok((rows, note))
}

/// One round; see [`approval_phase`]. `label` makes the binding message, which identifies the
/// round's `approval_requested` line.
async fn approval_round(
    setup: &mut SetupClient,
    server: &mut ServerProcess,
    agent: &Client,
    details: &str,
    label: &str,
) -> Result<ApprovalRound> {
    let binding = format!("gatehouse-load {label}");
    let body = format!(
        "login_hint=me&binding_message={}&authorization_details={details}",
        enc(&binding)
    );
    let asked = Instant::now();
    let (parts, bytes) = setup
        .call(
            Method::POST,
            "/bc-authorize",
            Some(&agent.basic),
            Some(form()),
            body,
        )
        .await?;
    if parts.status != StatusCode::OK {
        bail!(
            "POST /bc-authorize answered {} {}",
            parts.status,
            client::snippet(&bytes)
        );
    }
    let ack: serde_json::Value =
        serde_json::from_slice(&bytes).context("/bc-authorize response")?;
    let handle = ack["auth_req_id"].as_str().context("no auth_req_id")?;
    let within = Duration::from_secs(10);
    let (appeared, ev) = server
        .next_event("approval_requested", within, |ev| {
            ev["event"] == "approval_requested" && ev["binding_message"] == binding.as_str()
        })
        .await?;
    let id = ev["id"].as_str().context("approval id")?.to_owned();

    let decided = Instant::now();
    server.write_line(&serde_json::json!({ "approve": id }))?;
    let (recorded, ev) = server
        .next_event("approval_decided", within, |ev| {
            ev["event"] == "approval_decided" && ev["id"] == id.as_str()
        })
        .await?;
    if ev["decision"] != "approved" {
        bail!("the approval was not approved: {ev}");
    }

    let body = Bytes::from(format!(
        "grant_type={}&auth_req_id={}",
        enc(CIBA_GRANT),
        enc(handle)
    ));
    let mut extra_polls = 0;
    loop {
        let polled = Instant::now();
        let (parts, bytes) = setup
            .call(
                Method::POST,
                "/token",
                Some(&agent.basic),
                Some(form()),
                body.clone(),
            )
            .await?;
        let token = Instant::now();
        if parts.status == StatusCode::OK && client::contains(&bytes, b"\"access_token\"") {
            return Ok(ApprovalRound {
                asked,
                appeared,
                decided,
                recorded,
                token,
                extra_polls,
            });
        }
        let wait = parts.status == StatusCode::BAD_REQUEST
            && (client::contains(&bytes, b"\"authorization_pending\"")
                || client::contains(&bytes, b"\"slow_down\""));
        if !wait || extra_polls == 3 {
            bail!(
                "POST /token (CIBA) answered {} {}",
                parts.status,
                client::snippet(&bytes)
            );
        }
        // The earliest next poll the server accepts: the interval less its 200 ms of jitter.
        extra_polls += 1;
        tokio::time::sleep_until((polled + Duration::from_millis(850)).into()).await;
    }
}

// ---- phase 1: introspection -----------------------------------------------------------------

async fn introspect_phase(
    args: &Args,
    target: &Target,
    client: &Client,
    tokens: &[String],
    expect_active: bool,
    cpu: &Cpu,
) -> Result<Summary> {
    let bodies: Arc<[Bytes]> = tokens
        .iter()
        .map(|t| Bytes::from(format!("token={}", enc(t))))
        .collect();
    let conns = connect_all(target.addr, args.concurrency).await?;
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let per_worker =
        (duration.as_secs_f64() * 60_000.0 / args.concurrency as f64).min(4_000_000.0) as usize;

    // Sample CPU exactly at the edges of the measured window.
    let sampler = {
        let (pid, tps) = (cpu.pid, cpu.ticks_per_sec);
        tokio::spawn(async move {
            let cpu = Cpu {
                pid,
                ticks_per_sec: tps,
            };
            tokio::time::sleep_until(measure_from.into()).await;
            let a = cpu.mark();
            tokio::time::sleep_until(until.into()).await;
            let b = cpu.mark();
            cpu.between(&a, &b)
        })
    };

    let (host, auth) = (target.host.clone(), client.basic.clone());
    let tracing = args.trace.is_some();
    let outs = run_workers(conns, |i, mut s| {
        let (bodies, host, auth) = (bodies.clone(), host.clone(), auth.clone());
        async move {
            let mut out = WorkerOut::new(per_worker, tracing.then_some(measure_from));
            let mut n = i;
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let body = bodies[n % bodies.len()].clone();
                n += 1;
                let req = request(
                    Method::POST,
                    Uri::from_static("/introspect"),
                    &host,
                    Some(&auth),
                    Some(form()),
                    body,
                );
                let res = send(&mut s, req).await;
                let t1 = Instant::now();
                let measured = t0 >= measure_from;
                if measured {
                    out.record(t0, t1);
                }
                match res {
                    Ok((parts, body)) => {
                        let ok = parts.status == StatusCode::OK
                            && if expect_active {
                                client::contains(&body, b"\"active\":true")
                            } else {
                                client::contains(&body, b"\"active\":false")
                            };
                        if !ok && measured {
                            out.fail(|| format!("{} {}", parts.status, client::snippet(&body)));
                        }
                    }
                    Err(e) => {
                        out.fail(|| format!("transport: {e}"));
                        break;
                    }
                }
            }
            out
        }
    })
    .await?;
    append_trace(args, "introspect", &outs)?;
    let (cpu_use, threads) = sampler.await.unwrap_or((None, Vec::new()));
    Ok(Summary::from_workers(
        "introspect",
        outs,
        duration,
        cpu_use,
        threads,
    ))
}

// ---- gateway overhead -------------------------------------------------------------------------

/// Starts the upstream, adds the connection `load-api` to it (the key into the OS keyring),
/// gets the agent a `load-api:read` token for the connection's resource, then measures the same
/// GET direct and through the gateway.
async fn gateway_phase(
    args: &Args,
    target: &Target,
    server: &mut ServerProcess,
    setup: &mut SetupClient,
    client: &Client,
    cpu: &Cpu,
    bin: &std::path::Path,
) -> Result<(Vec<Summary>, String)> {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    let key = format!("sk_load_{}", URL_SAFE_NO_PAD.encode(raw));
    let upstream = gateway::spawn_upstream(Some(key.clone()))?;
    let name = "load-api";
    gateway::add_connection(
        bin,
        server.data_dir(),
        name,
        &format!("http://{upstream}/v1"),
        &key,
    )?;
    let resource = format!("{}/gateway/{name}", target.issuer);
    let (verifier, challenge) = pkce();
    let uri = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&state=gw&code_challenge={}&code_challenge_method=S256&scope={}&resource={}",
        enc(&client.id),
        enc(REDIRECT_URI),
        challenge,
        enc(&format!("{name}:read")),
        enc(&resource)
    );
    let token = consent_token(setup, server, client, &uri, "gw", &verifier).await?;
    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let direct = gateway::GetTarget {
        name: GATEWAY_DIRECT,
        addr: upstream,
        host: HeaderValue::from_str(&upstream.to_string())?,
        uri: "/v1/items/42?fields=name".parse()?,
        auth: None,
        key: Some(HeaderValue::from_str(&key)?),
    };
    let via = gateway::GetTarget {
        name: GATEWAY_VIA,
        addr: target.addr,
        host: target.host.clone(),
        uri: format!("/gateway/{name}/items/42?fields=name").parse()?,
        auth: Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
        key: None,
    };
    eprintln!(
        "gatehouse-load: gateway, {} connections, direct then through the gateway, {:.0} s warm-up + {:.0} s each",
        args.concurrency, args.warmup, args.duration
    );
    let d = gateway::timed_gets(&direct, args.concurrency, warmup, duration, cpu).await?;
    let g = gateway::timed_gets(&via, args.concurrency, warmup, duration, cpu).await?;
    let note = format!(
        "gateway: the upstream is a minimal hyper server on its own thread in this process, answering {} bytes of JSON; each gateway call authenticates the token, re-checks the connection row, evaluates the policy, injects the key (from the credential cache) and writes its gateway.call audit event",
        gateway::UPSTREAM_BODY.len()
    );
    Ok((vec![d, g], note))
}

/// The added latency (`via` minus `direct`) at p50 and p99, in microseconds.
fn added(report: &Report, direct: &str, via: &str) -> Option<(i64, i64)> {
    let d = report.phase(direct)?;
    let g = report.phase(via)?;
    Some((
        i64::from(g.p50_us) - i64::from(d.p50_us),
        i64::from(g.p99_us) - i64::from(d.p99_us),
    ))
}

fn fmt_signed_us(us: i64) -> String {
    if us < 0 {
        format!("-{}", fmt_us(u32::try_from(-us).unwrap_or(u32::MAX)))
    } else {
        fmt_us(u32::try_from(us).unwrap_or(u32::MAX))
    }
}

// ---- MCP gateway overhead ---------------------------------------------------------------------

/// Adds `mcp-test-server` to the server as `bench`, gets the agent an `mcp:bench` token for
/// `{issuer}/mcp/bench` (the consent, approved on the jsonl stdin, pins the server's tools), then
/// measures `tools/call echo` over stdio straight to a child of this tool and through Gatehouse.
async fn mcp_phase(
    args: &Args,
    target: &Target,
    server: &mut ServerProcess,
    setup: &mut SetupClient,
    client: &Client,
    bin: &std::path::Path,
) -> Result<(Vec<Summary>, String)> {
    let server_bin = mcp_test_server_bin(args)?;
    mcp::add_server(bin, server.data_dir(), MCP_SERVER, &server_bin).await?;
    mcp::wait_for_tool(bin, server.data_dir(), MCP_SERVER, mcp::TOOL).await?;
    let resource = format!("{}/mcp/{MCP_SERVER}", target.issuer);
    let (verifier, challenge) = pkce();
    let uri = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&state=mcp&code_challenge={}&code_challenge_method=S256&scope={}&resource={}",
        enc(&client.id),
        enc(REDIRECT_URI),
        challenge,
        enc(&format!("mcp:{MCP_SERVER}")),
        enc(&resource)
    );
    let token = consent_token(setup, server, client, &uri, "mcp", &verifier).await?;

    let warmup = Duration::from_secs_f64(args.warmup.max(0.0));
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    eprintln!(
        "gatehouse-load: mcp, {} concurrent tools/call, direct (stdio) then through {resource}, {:.0} s warm-up + {:.0} s each",
        args.concurrency, args.warmup, args.duration
    );
    let (direct, child) = mcp::spawn_direct(&server_bin).await?;
    mcp::check_listed(&direct, "direct").await?;
    // The direct row's server is the test server alone; Gatehouse idles meanwhile.
    let direct_cpu = Cpu {
        pid: Some(child),
        ticks_per_sec: server::clock_ticks(),
    };
    let d = mcp::timed_calls(
        MCP_DIRECT,
        &direct,
        args.concurrency,
        warmup,
        duration,
        &direct_cpu,
    )
    .await?;
    // Closing the client ends the child (its stdin closes; the transport kills it on drop).
    let _ = direct.cancel().await;

    let via = mcp::connect_http(&resource, &token, args.concurrency).await?;
    mcp::check_listed(&via, "through gatehouse").await?;
    // Gatehouse's own child runs the tool: its CPU counts as the server's.
    let upstream_name = "mcp-test-server";
    let upstream = mcp::child_named(server.pid(), upstream_name).map(|pid| (pid, upstream_name));
    let via_cpu = Cpu {
        pid: Some(server.pid()),
        ticks_per_sec: server::clock_ticks(),
    };
    // The rmcp client proved the endpoint works; the measured calls use a plain HTTP client.
    let _ = via.cancel().await;
    let g = mcp::timed_posts(
        MCP_VIA,
        target,
        &format!("/mcp/{MCP_SERVER}"),
        &token,
        args.concurrency,
        warmup,
        duration,
        &via_cpu,
        upstream,
    )
    .await?;
    let mut note = format!(
        "mcp: each call is tools/call {} {{\"text\":\"{}\"}} on mcp-test-server (rmcp, stdio), {} in flight; direct, on one rmcp stdio client connection to a child of this tool; through Gatehouse, on as many keep-alive HTTP connections of a plain HTTP client, each call an HTTP POST to /mcp/{MCP_SERVER} (stateless Streamable HTTP, JSON response) that authenticates the token, checks audience and scope, looks up the pinned tool, evaluates the policy (read-only: allowed without a prompt), forwards the call to Gatehouse's own stdio child and writes its mcp.call audit event; server CPU is the test server (direct) or Gatehouse plus its test server child (through)",
        mcp::TOOL,
        mcp::TEXT,
        args.concurrency
    );
    if upstream.is_none() {
        note.push_str(
            "; Gatehouse's mcp-test-server child was not found, so its CPU counts as other processes'",
        );
    }
    Ok((vec![d, g], note))
}

fn mcp_test_server_bin(args: &Args) -> Result<PathBuf> {
    let bin = match &args.mcp_test_server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .join(format!("mcp-test-server{}", std::env::consts::EXE_SUFFIX)),
    };
    if !bin.exists() {
        bail!(
            "{} does not exist: build it (cargo build --release -p gatehouse-e2e --bin mcp-test-server) or pass --mcp-test-server PATH",
            bin.display()
        );
    }
    // Gatehouse runs it from its own working directory: give it an absolute path.
    Ok(std::path::absolute(&bin)?)
}

// ---- phase 2: mint codes (authorize with remembered consent) --------------------------------

async fn mint_phase(
    args: &Args,
    target: &Target,
    client: &Client,
    cpu: &Cpu,
) -> Result<(Summary, Vec<Bytes>, Instant)> {
    let n = args
        .codes
        .unwrap_or_else(|| (args.duration.max(0.1) * 10_000.0).ceil() as usize)
        .max(1);
    eprintln!(
        "gatehouse-load: minting {n} authorization codes (GET /authorize, remembered consent), {} connections",
        args.concurrency
    );
    let conns = connect_all(target.addr, args.concurrency).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let minted = Arc::new(std::sync::Mutex::new(Vec::<Bytes>::with_capacity(n)));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.mint_limit.max(1.0));
    let before = cpu.mark();
    let host = target.host.clone();
    let client_id = client.id.clone();
    let per_worker = n / args.concurrency + 16;
    let tracing = args.trace.is_some();
    let outs = run_workers(conns, |_, mut s| {
        let (next, minted, host, client_id) = (
            next.clone(),
            minted.clone(),
            host.clone(),
            client_id.clone(),
        );
        async move {
            let mut out = WorkerOut::new(per_worker, tracing.then_some(start));
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                if i >= n || t0 >= deadline {
                    break;
                }
                let (verifier, challenge) = pkce();
                let state = format!("s{i}");
                let Ok(uri) = Uri::try_from(authorize_uri(&client_id, &challenge, &state)) else {
                    out.fail(|| "bad authorize URI".into());
                    continue;
                };
                let req = request(Method::GET, uri, &host, None, None, Bytes::new());
                let res = send(&mut s, req).await;
                out.record(t0, Instant::now());
                match res {
                    Ok((parts, body)) => {
                        match location(&parts, &body, "GET /authorize")
                            .and_then(|loc| code_from_redirect(&loc, &state))
                        {
                            Ok(code) => mine.push(Bytes::from(token_body(&code, &verifier))),
                            Err(e) => out.fail(|| format!("{e:#}")),
                        }
                    }
                    Err(e) => {
                        out.fail(|| format!("transport: {e}"));
                        break;
                    }
                }
            }
            if let Ok(mut m) = minted.lock() {
                m.extend(mine);
            }
            out
        }
    })
    .await?;
    append_trace(args, "authorize", &outs)?;
    let elapsed = start.elapsed();
    let after = cpu.mark();
    let (cpu_use, threads) = cpu.between(&before, &after);
    let bodies = std::mem::take(&mut *minted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    if bodies.len() < n {
        eprintln!(
            "gatehouse-load: minted {} of {n} codes within the {:.0} s limit",
            bodies.len(),
            args.mint_limit
        );
    }
    let summary = Summary::from_workers(
        "authorize (remembered consent)",
        outs,
        elapsed,
        cpu_use,
        threads,
    );
    Ok((summary, bodies, start))
}

// ---- phase 3: code exchange -----------------------------------------------------------------

async fn exchange_phase(
    args: &Args,
    target: &Target,
    client: &Client,
    bodies: Vec<Bytes>,
    minted_at: Instant,
    cpu: &Cpu,
) -> Result<Summary> {
    let total = bodies.len();
    let bodies: Arc<[Bytes]> = bodies.into();
    let next = Arc::new(AtomicUsize::new(0));
    let conns = connect_all(target.addr, args.concurrency).await?;
    let start = Instant::now();
    // Codes live 60 s from minting; stop well before the first ones expire.
    let until = (start + Duration::from_secs_f64(args.duration.max(0.1)))
        .min(minted_at + Duration::from_secs(55));
    let before = cpu.mark();
    let (host, auth) = (target.host.clone(), client.basic.clone());
    let per_worker = total / args.concurrency + 16;
    let tracing = args.trace.is_some();
    let outs = run_workers(conns, |_, mut s| {
        let (bodies, next, host, auth) = (bodies.clone(), next.clone(), host.clone(), auth.clone());
        async move {
            let mut out = WorkerOut::new(per_worker, tracing.then_some(start));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                if i >= bodies.len() || t0 >= until {
                    break;
                }
                let req = request(
                    Method::POST,
                    Uri::from_static("/token"),
                    &host,
                    Some(&auth),
                    Some(form()),
                    bodies[i].clone(),
                );
                let res = send(&mut s, req).await;
                let t1 = Instant::now();
                out.record(t0, t1);
                out.finished_at = Some(t1);
                match res {
                    Ok((parts, body)) => {
                        if parts.status != StatusCode::OK
                            || !client::contains(&body, b"\"access_token\"")
                        {
                            out.fail(|| format!("{} {}", parts.status, client::snippet(&body)));
                        }
                    }
                    Err(e) => {
                        out.fail(|| format!("transport: {e}"));
                        break;
                    }
                }
            }
            out
        }
    })
    .await?;
    append_trace(args, "token", &outs)?;
    let after = cpu.mark();
    let end = outs
        .iter()
        .filter_map(|o| o.finished_at)
        .max()
        .unwrap_or(start);
    let (cpu_use, threads) = cpu.between(&before, &after);
    Ok(Summary::from_workers(
        "token (authorization_code)",
        outs,
        end.saturating_duration_since(start),
        cpu_use,
        threads,
    ))
}

// ---- report ---------------------------------------------------------------------------------

impl Report {
    fn phase(&self, name: &str) -> Option<&Summary> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// (label, target text, measured, met) for each measured target.
    fn targets(&self) -> Vec<(&'static str, String, String, bool)> {
        let mut v = Vec::new();
        let throughput =
            |p: &Summary| format!("{} req/s, p99 {}", fmt_int(p.rate()), fmt_us(p.p99_us));
        if let Some(p) = self.phase(APPROVAL_APPEARS) {
            v.push((
                "approval appears",
                format!("p99 <= {}", fmt_us(APPROVAL_TARGET_P99_US)),
                format!("p99 {}", fmt_us(p.p99_us)),
                p.errors == 0 && p.requests > 0 && p.p99_us <= APPROVAL_TARGET_P99_US,
            ));
        }
        if let Some(p) = self.phase("introspect") {
            v.push((
                "introspection",
                format!(
                    ">= {} req/s and p99 <= {}",
                    fmt_int(INTROSPECT_TARGET_RPS),
                    fmt_us(INTROSPECT_TARGET_P99_US)
                ),
                throughput(p),
                p.errors == 0
                    && p.rate() >= INTROSPECT_TARGET_RPS
                    && p.p99_us <= INTROSPECT_TARGET_P99_US,
            ));
        }
        if let (Some((p50, p99)), Some(d), Some(g)) = (
            added(self, GATEWAY_DIRECT, GATEWAY_VIA),
            self.phase(GATEWAY_DIRECT),
            self.phase(GATEWAY_VIA),
        ) {
            v.push((
                "gateway added",
                format!("p99 <= {}", fmt_us(GATEWAY_TARGET_ADDED_P99_US as u32)),
                format!(
                    "p50 +{}, p99 +{}; {} req/s",
                    fmt_signed_us(p50),
                    fmt_signed_us(p99),
                    fmt_int(g.rate())
                ),
                d.errors == 0
                    && g.errors == 0
                    && g.requests > 0
                    && p99 <= GATEWAY_TARGET_ADDED_P99_US,
            ));
        }
        if let (Some((p50, p99)), Some(d), Some(g)) = (
            added(self, MCP_DIRECT, MCP_VIA),
            self.phase(MCP_DIRECT),
            self.phase(MCP_VIA),
        ) {
            v.push((
                "mcp added",
                format!("p99 <= {}", fmt_us(MCP_TARGET_ADDED_P99_US as u32)),
                format!(
                    "p50 +{}, p99 +{}; {} req/s",
                    fmt_signed_us(p50),
                    fmt_signed_us(p99),
                    fmt_int(g.rate())
                ),
                d.errors == 0 && g.errors == 0 && g.requests > 0 && p99 <= MCP_TARGET_ADDED_P99_US,
            ));
        }
        if let Some(p) = self.phase("token (authorization_code)") {
            v.push((
                "code exchange",
                format!(
                    ">= {} req/s and p99 <= {}",
                    fmt_int(EXCHANGE_TARGET_RPS),
                    fmt_us(EXCHANGE_TARGET_P99_US)
                ),
                throughput(p),
                p.errors == 0
                    && p.rate() >= EXCHANGE_TARGET_RPS
                    && p.p99_us <= EXCHANGE_TARGET_P99_US,
            ));
        }
        v
    }

    fn all_targets_met(&self) -> bool {
        self.targets().iter().all(|(_, _, _, ok)| *ok)
    }

    fn print(&self) {
        println!(
            "gatehouse-load: {} | {} connections | load generator: {} | {} CPUs shared by server and generator",
            self.issuer, self.concurrency, self.runtime, self.cpus
        );
        println!();
        println!(
            "{:<31} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9}",
            "phase",
            "requests",
            "errors",
            "req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "server CPU",
            "load CPU",
            "other CPU"
        );
        for p in &self.phases {
            let secs = p.elapsed.as_secs_f64().max(1e-9);
            let (srv, load, other) = match p.cpu {
                Some(c) => (
                    format!("{:.2} cores", c.server_secs / secs),
                    format!("{:.2} cores", c.load_secs / secs),
                    c.other_secs
                        .map_or("-".into(), |o| format!("{:.2} cores", o / secs)),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            println!(
                "{:<31} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9}",
                p.name,
                fmt_int(p.requests as f64),
                p.errors,
                if p.latency_only {
                    "-".into()
                } else {
                    fmt_int(p.rate())
                },
                fmt_us(p.p50_us),
                fmt_us(p.p90_us),
                fmt_us(p.p99_us),
                fmt_us(p.p999_us),
                fmt_us(p.max_us),
                srv,
                load,
                other
            );
        }
        println!();
        for p in &self.phases {
            let busy = p
                .cpu
                .and_then(|c| c.other_secs)
                .map(|o| o / p.elapsed.as_secs_f64().max(1e-9))
                .filter(|&cores| cores > 0.1)
                .map(|cores| format!("; WARNING: other processes used {cores:.2} cores meanwhile, so these figures are low"))
                .unwrap_or_default();
            println!(
                "{:<31} measured {:.2} s{}{busy}",
                p.name,
                p.elapsed.as_secs_f64(),
                p.first_error
                    .as_ref()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
            );
            if !p.server_threads.is_empty() {
                let secs = p.elapsed.as_secs_f64().max(1e-9);
                let threads: Vec<String> = p
                    .server_threads
                    .iter()
                    .take(6)
                    .map(|(n, s)| format!("{n} {:.2}", s / secs))
                    .collect();
                println!("{:<31} server cores by thread: {}", "", threads.join(", "));
            }
        }
        let targets = self.targets();
        if !targets.is_empty() {
            println!();
            println!("targets (this machine, generator on the same cores):");
            for (label, text, got, ok) in &targets {
                println!(
                    "  {label:<16} {text:<36} measured {got:<30} {}",
                    if *ok { "MET" } else { "MISSED" }
                );
            }
            if self.phase("introspect").is_some() {
                println!(
                    "  (Ory Hydra publishes 5,109 introspections/s on 2 CPUs with an in-memory store)"
                );
            }
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "concurrency": self.concurrency,
            "load_runtime": self.runtime,
            "cpus": self.cpus,
            "duration_seconds": self.duration,
            "phases": self.phases.iter().map(Summary::to_json).collect::<Vec<_>>(),
            "targets": self.targets().iter().map(|(label, text, got, ok)| serde_json::json!({
                "name": label, "target": text, "measured": got, "met": ok,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}
