//! The gateway phase: a minimal upstream API on its own thread, a connection to it in the vault
//! (the real OS keyring, through `gatehouse connections add`), and the same GET measured
//! straight to the upstream and through `/gateway/{connection}/...`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;

use crate::client::{connect_all, request, run_workers, send, snippet};
use crate::stats::{Summary, WorkerOut};

/// What the upstream answers to every request.
pub const UPSTREAM_BODY: &[u8] = br#"{"id":42,"name":"gatehouse-load","ok":true}"#;
/// The header the connection's API key goes in.
const KEY_HEADER: &str = "X-Upstream-Key";

/// Starts the upstream on 127.0.0.1:0 on a thread of its own (a current-thread runtime), so it
/// neither shares the load generator's thread nor competes with it for wake-ups. It checks the
/// API key when `key` is set, so a call that went through the gateway without the credential
/// fails loudly. Runs until the process exits.
pub fn spawn_upstream(key: Option<String>) -> Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind the upstream")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("the upstream's runtime")?;
    std::thread::Builder::new()
        .name("upstream".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    let key = key.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let allowed = key.as_deref().is_none_or(|k| {
                                req.headers().get(KEY_HEADER).map(HeaderValue::as_bytes)
                                    == Some(k.as_bytes())
                            });
                            async move {
                                let mut res =
                                    Response::new(Full::new(Bytes::from_static(if allowed {
                                        UPSTREAM_BODY
                                    } else {
                                        b"{}"
                                    })));
                                if !allowed {
                                    *res.status_mut() = StatusCode::UNAUTHORIZED;
                                }
                                res.headers_mut().insert(
                                    header::CONTENT_TYPE,
                                    HeaderValue::from_static("application/json"),
                                );
                                Ok::<_, std::convert::Infallible>(res)
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .context("spawn the upstream thread")?;
    Ok(addr)
}

/// `gatehouse connections add NAME --url URL --api-key --header X-Upstream-Key` on the server's
/// data dir, the key on stdin (the server sees the new row on its next call).
pub fn add_connection(bin: &Path, data_dir: &Path, name: &str, url: &str, key: &str) -> Result<()> {
    let mut child = Command::new(bin)
        .args(["connections", "add", name, "--url", url, "--api-key"])
        .args(["--header", KEY_HEADER, "--label", "gatehouse-load"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn gatehouse connections add")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{key}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "gatehouse connections add failed ({}): {}{}; the gateway phase needs an unlocked OS keyring (run it inside the headless session scripts/test.sh sets up)",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Where the timed GETs go.
pub struct GetTarget {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub uri: Uri,
    pub auth: Option<HeaderValue>,
    /// The upstream's API key, for direct calls (the gateway attaches it itself).
    pub key: Option<HeaderValue>,
}

/// GETs at `concurrency` keep-alive connections for `warmup` + `duration`; measured after the
/// warm-up. A success is a 200 with the upstream's body.
pub async fn timed_gets(
    t: &GetTarget,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    cpu: &crate::Cpu,
) -> Result<Summary> {
    let conns = connect_all(t.addr, concurrency).await?;
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let per_worker =
        (duration.as_secs_f64() * 40_000.0 / concurrency as f64).min(4_000_000.0) as usize;
    let outs_fut = run_workers(conns, |_, mut s| {
        let (host, auth, uri, key) = (t.host.clone(), t.auth.clone(), t.uri.clone(), t.key.clone());
        async move {
            let mut out = WorkerOut::new(per_worker, None);
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let mut req = request(
                    Method::GET,
                    uri.clone(),
                    &host,
                    auth.as_ref(),
                    None,
                    Bytes::new(),
                );
                if let Some(k) = &key {
                    req.headers_mut().insert(KEY_HEADER, k.clone());
                }
                let res = send(&mut s, req).await;
                let t1 = Instant::now();
                let measured = t0 >= measure_from;
                if measured {
                    out.record(t0, t1);
                }
                match res {
                    Ok((parts, body)) => {
                        if (parts.status != StatusCode::OK || body.as_ref() != UPSTREAM_BODY)
                            && measured
                        {
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
    // Sample CPU at the edges of the measured window, on this task, while the workers run.
    let sampler = async {
        tokio::time::sleep_until(measure_from.into()).await;
        let a = cpu.mark();
        tokio::time::sleep_until(until.into()).await;
        let b = cpu.mark();
        cpu.between(&a, &b)
    };
    let (outs, (cpu_use, threads)) = tokio::join!(outs_fut, sampler);
    Ok(Summary::from_workers(
        t.name, outs?, duration, cpu_use, threads,
    ))
}
