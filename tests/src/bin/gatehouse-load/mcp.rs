//! The MCP phase: `mcp-test-server` added to the server with `gatehouse mcp add`, and the same
//! `tools/call` of its read-only `echo` measured over stdio straight to a child of this tool and
//! through Gatehouse's `/mcp/{name}` (Streamable HTTP), each from `concurrency` tasks sharing one
//! rmcp client connection (rmcp multiplexes the requests on it).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};

use crate::stats::{CpuUse, Summary, WorkerOut};

/// An rmcp client with no handler of its own (it answers no server requests).
pub type Client = RunningService<RoleClient, ()>;

/// The tool every measured call runs, and what it echoes.
pub const TOOL: &str = "echo";
pub const TEXT: &str = "ping";
/// A call that takes longer than this counts as an error (and the worker moves on).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `mcp-test-server` as this tool's child over stdio and completes the handshake.
/// Returns the client and the child's process id (for its CPU time).
pub async fn spawn_direct(server_bin: &Path) -> Result<(Client, u32)> {
    let mut cmd = tokio::process::Command::new(server_bin);
    // Only the defaults: no calls record, the fixed echo description.
    for var in [
        "MCP_TEST_ECHO_DESCRIPTION",
        "MCP_TEST_DESCRIPTION_FILE",
        "MCP_TEST_CALLS",
        "MCP_TEST_SECRET",
    ] {
        cmd.env_remove(var);
    }
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", server_bin.display()))?;
    let pid = transport
        .id()
        .context("the MCP test server has no process id")?;
    let client = tokio::time::timeout(Duration::from_secs(10), ().serve(transport))
        .await
        .context("the MCP handshake with the test server timed out")?
        .context("the MCP handshake with the test server failed")?;
    Ok((client, pid))
}

/// `gatehouse mcp add NAME -- SERVER_BIN` on the server's data dir. The data dir goes in the
/// environment: everything after `--` is the MCP server's own command line.
pub async fn add_server(bin: &Path, data_dir: &Path, name: &str, server_bin: &Path) -> Result<()> {
    let out = gatehouse_mcp(bin, data_dir)
        .args(["add", name, "--"])
        .arg(server_bin)
        .output()
        .await
        .context("run gatehouse mcp add")?;
    if !out.status.success() {
        bail!(
            "gatehouse mcp add failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Polls `gatehouse mcp tools NAME --json` until it lists `tool`: the server has started the
/// MCP server and recorded its tools (which the consent then pins).
pub async fn wait_for_tool(bin: &Path, data_dir: &Path, name: &str, tool: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = gatehouse_mcp(bin, data_dir)
            .args(["tools", name, "--json"])
            .output()
            .await
            .context("run gatehouse mcp tools")?;
        let listed = out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|tools| tools.iter().any(|t| t["name"] == tool));
        if listed {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "gatehouse mcp tools {name} did not list {tool} within 20 s: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn gatehouse_mcp(bin: &Path, data_dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("mcp")
        .env("GATEHOUSE_DATA_DIR", data_dir)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// An rmcp client of Gatehouse's `/mcp/{name}` endpoint with the agent's access token, allowed
/// `concurrency` POSTs in flight at once (one per measured task).
pub async fn connect_http(url: &str, token: &str, concurrency: usize) -> Result<Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .auth_header(token)
        .max_concurrent_requests(concurrency);
    let transport = StreamableHttpClientTransport::from_config(config);
    tokio::time::timeout(Duration::from_secs(10), ().serve(transport))
        .await
        .with_context(|| format!("the MCP handshake with {url} timed out"))?
        .with_context(|| format!("the MCP handshake with {url} failed"))
}

/// Fails unless the client's `tools/list` offers [`TOOL`].
pub async fn check_listed(client: &Client, what: &str) -> Result<()> {
    let tools = client
        .list_all_tools()
        .await
        .with_context(|| format!("tools/list ({what})"))?;
    if !tools.iter().any(|t| t.name == TOOL) {
        let names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
        bail!("tools/list ({what}) does not offer {TOOL}: {names:?}");
    }
    Ok(())
}

/// The process id of `pid`'s child running `comm` (the MCP server Gatehouse started), from
/// `/proc/*/stat`.
pub fn child_named(pid: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let s = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let name = s.get(s.find('(')? + 1..s.rfind(')')?)?;
        // After the command name: state, then ppid.
        let ppid: u32 = s
            .get(s.rfind(')')? + 1..)?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        // The kernel keeps the first 15 bytes of the name.
        (ppid == pid && comm.get(..15).unwrap_or(comm) == name).then_some(child)
    })
}

fn echo_args() -> JsonObject {
    let mut args = JsonObject::new();
    args.insert("text".into(), TEXT.into());
    args
}

/// Whether a result is the echo of [`TEXT`].
fn echoed(r: &CallToolResult) -> bool {
    r.is_error != Some(true)
        && r.content.len() == 1
        && r.content[0].as_text().is_some_and(|t| t.text == TEXT)
}

/// `tools/call echo {"text":"ping"}` from `concurrency` tasks on the one client for `warmup` +
/// `duration`, measured after the warm-up; the server's CPU is `cpu`'s process (the direct row's
/// test server).
pub async fn timed_calls(
    name: &'static str,
    client: &Client,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    cpu: &crate::Cpu,
) -> Result<Summary> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let per_worker =
        (duration.as_secs_f64() * 20_000.0 / concurrency as f64).min(4_000_000.0) as usize;
    let mut handles = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let peer: Peer<RoleClient> = client.peer().clone();
        handles.push(tokio::spawn(async move {
            let mut out = WorkerOut::new(per_worker, None);
            let params = CallToolRequestParams::new(TOOL).with_arguments(echo_args());
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let res = tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(params.clone())).await;
                let t1 = Instant::now();
                let measured = t0 >= measure_from;
                if measured {
                    out.record(t0, t1);
                }
                match res {
                    Ok(Ok(r)) if echoed(&r) => {}
                    Ok(Ok(r)) => {
                        if measured {
                            out.fail(|| {
                                format!(
                                    "unexpected result: {}",
                                    serde_json::to_string(&r).unwrap_or_default()
                                )
                            });
                        }
                    }
                    Ok(Err(e)) => {
                        out.fail(|| format!("tools/call: {e}"));
                        if peer.is_transport_closed() {
                            break;
                        }
                    }
                    Err(_) => out.fail(|| format!("tools/call took over {CALL_TIMEOUT:?}")),
                }
            }
            out
        }));
    }
    let outs_fut = async {
        let mut outs = Vec::with_capacity(handles.len());
        for h in handles {
            outs.push(h.await.context("worker task failed")?);
        }
        anyhow::Ok(outs)
    };
    // Sample CPU at the edges of the measured window, on this task, while the workers run.
    let sampler = cpu_window(cpu, None, measure_from, until);
    let (outs, (cpu_use, threads)) = tokio::join!(outs_fut, sampler);
    Ok(Summary::from_workers(
        name, outs?, duration, cpu_use, threads,
    ))
}

/// The server's CPU use between `from` and `until`, sampled on the calling task while the workers
/// run; with `upstream`, that child's CPU counts as the server's (listed among its threads).
async fn cpu_window(
    cpu: &crate::Cpu,
    upstream: Option<(u32, &str)>,
    from: Instant,
    until: Instant,
) -> (Option<CpuUse>, Vec<(String, f64)>) {
    let up_ticks = || upstream.and_then(|(pid, _)| crate::server::process_ticks(pid));
    tokio::time::sleep_until(from.into()).await;
    let (a, ua) = (cpu.mark(), up_ticks());
    tokio::time::sleep_until(until.into()).await;
    let (b, ub) = (cpu.mark(), up_ticks());
    let (mut cpu_use, mut threads) = cpu.between(&a, &b);
    if let (Some((_, comm)), Some(ua), Some(ub)) = (upstream, ua, ub) {
        let secs = ub.saturating_sub(ua) as f64 / cpu.ticks_per_sec;
        cpu_use = cpu_use.map(|c| add_upstream(c, secs));
        threads.push((format!("{comm} (child)"), secs));
        threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    }
    (cpu_use, threads)
}

/// Moves the upstream child's CPU seconds from "other processes" to the server.
fn add_upstream(c: CpuUse, secs: f64) -> CpuUse {
    CpuUse {
        server_secs: c.server_secs + secs,
        load_secs: c.load_secs,
        other_secs: c.other_secs.map(|o| (o - secs).max(0.0)),
    }
}

/// `tools/call echo {"text":"ping"}` through Gatehouse as plain HTTP POSTs (one JSON-RPC request
/// each, `MCP-Protocol-Version: 2025-06-18`, JSON answer) on `concurrency` keep-alive
/// connections, measured after the warm-up. A success is a 200 whose result echoes [`TEXT`]
/// without `isError`. This is the same lightweight client as the gateway phase's, so what is
/// measured is Gatehouse, not a client library.
#[allow(clippy::too_many_arguments)]
pub async fn timed_posts(
    name: &'static str,
    target: &crate::client::Target,
    path: &str,
    token: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    cpu: &crate::Cpu,
    upstream: Option<(u32, &str)>,
) -> Result<Summary> {
    use crate::client::{connect_all, request, run_workers, send, snippet};
    use hyper::body::Bytes;
    use hyper::header::HeaderValue;
    use hyper::{Method, StatusCode, Uri};

    let conns = connect_all(target.addr, concurrency).await?;
    let uri: Uri = path.parse().context("the MCP endpoint's path")?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).context("the token")?;
    let body = Bytes::from(
        serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": TOOL, "arguments": { "text": TEXT } }
        })
        .to_string(),
    );
    let want = format!("\"text\":\"{TEXT}\"");
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let per_worker =
        (duration.as_secs_f64() * 20_000.0 / concurrency as f64).min(4_000_000.0) as usize;
    let outs_fut = run_workers(conns, |_, mut s| {
        let (host, auth, uri, body, want) = (
            target.host.clone(),
            auth.clone(),
            uri.clone(),
            body.clone(),
            want.clone(),
        );
        async move {
            let mut out = WorkerOut::new(per_worker, None);
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let mut req = request(
                    Method::POST,
                    uri.clone(),
                    &host,
                    Some(&auth),
                    Some(crate::client::json()),
                    body.clone(),
                );
                let h = req.headers_mut();
                h.insert(
                    hyper::header::ACCEPT,
                    HeaderValue::from_static("application/json, text/event-stream"),
                );
                h.insert(
                    "mcp-protocol-version",
                    HeaderValue::from_static("2025-06-18"),
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
                            && crate::client::contains(&body, want.as_bytes())
                            && !crate::client::contains(&body, b"\"isError\":true");
                        if !ok && measured {
                            out.fail(|| format!("{} {}", parts.status, snippet(&body)));
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
    });
    let sampler = cpu_window(cpu, upstream, measure_from, until);
    let (outs, (cpu_use, threads)) = tokio::join!(outs_fut, sampler);
    Ok(Summary::from_workers(
        name, outs?, duration, cpu_use, threads,
    ))
}
