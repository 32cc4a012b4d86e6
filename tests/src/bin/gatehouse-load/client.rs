//! A deliberately cheap HTTP/1.1 client: one raw hyper connection per worker, kept alive, with
//! the connection driven in the worker's own task (no cross-task wake-up per request), and
//! request bodies and header values built once up front.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::http::response::Parts;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::WorkerOut;

pub type Sender = SendRequest<Full<Bytes>>;
pub type Conn = Connection<TokioIo<TcpStream>, Full<Bytes>>;

pub fn form() -> HeaderValue {
    HeaderValue::from_static("application/x-www-form-urlencoded")
}

pub fn json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// Where the server is: its socket address and the exact `Host` header it accepts.
#[derive(Debug, Clone)]
pub struct Target {
    pub issuer: String,
    pub addr: SocketAddr,
    pub host: HeaderValue,
}

impl Target {
    pub fn from_issuer(issuer: &str) -> Result<Self> {
        let url = url::Url::parse(issuer).with_context(|| format!("issuer {issuer}"))?;
        if url.scheme() != "http" {
            bail!("the issuer must be an http:// loopback URL, got {issuer}");
        }
        let addr = *url
            .socket_addrs(|| Some(80))?
            .first()
            .context("the issuer has no address")?;
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        Ok(Target {
            issuer: issuer.trim_end_matches('/').to_owned(),
            addr,
            host: HeaderValue::from_str(host)?,
        })
    }
}

/// Opens one keep-alive HTTP/1.1 connection. The caller must poll the returned [`Conn`].
pub async fn connect(addr: SocketAddr) -> Result<(Sender, Conn)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    Ok((sender, conn))
}

/// Builds a request with only the headers the server needs (Content-Length comes from the body).
#[inline]
pub fn request(
    method: Method,
    uri: Uri,
    host: &HeaderValue,
    auth: Option<&HeaderValue>,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(header::HOST, host.clone());
    if let Some(a) = auth {
        h.insert(header::AUTHORIZATION, a.clone());
    }
    if let Some(ct) = content_type {
        h.insert(header::CONTENT_TYPE, ct);
    }
    req
}

/// Sends one request and reads the whole response.
#[inline]
pub async fn send(s: &mut Sender, req: Request<Full<Bytes>>) -> hyper::Result<(Parts, Bytes)> {
    s.ready().await?;
    let res = s.send_request(req).await?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts, body))
}

/// Opens `n` connections before any worker starts, so the measurement excludes connecting.
pub async fn connect_all(addr: SocketAddr, n: usize) -> Result<Vec<(Sender, Conn)>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(connect(addr).await?);
    }
    Ok(v)
}

/// Runs one worker per connection, each in its own task that also drives its connection.
pub async fn run_workers<F, Fut>(conns: Vec<(Sender, Conn)>, f: F) -> Result<Vec<WorkerOut>>
where
    F: Fn(usize, Sender) -> Fut,
    Fut: Future<Output = WorkerOut> + Send + 'static,
{
    let mut handles = Vec::with_capacity(conns.len());
    for (i, (sender, conn)) in conns.into_iter().enumerate() {
        let work = f(i, sender);
        handles.push(tokio::spawn(async move {
            tokio::select! {
                biased;
                out = work => out,
                r = conn => {
                    let mut out = WorkerOut::default();
                    out.fail(|| format!("the connection ended early: {r:?}"));
                    out
                }
            }
        }));
    }
    let mut outs = Vec::with_capacity(handles.len());
    for h in handles {
        outs.push(h.await.map_err(|e| anyhow!("worker task failed: {e}"))?);
    }
    Ok(outs)
}

/// A connection for the setup steps (not measured): its connection runs in a spawned task.
#[derive(Debug)]
pub struct SetupClient {
    sender: Sender,
    host: HeaderValue,
}

impl SetupClient {
    pub async fn connect(target: &Target) -> Result<Self> {
        let (sender, conn) = connect(target.addr).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            host: target.host.clone(),
        })
    }

    pub async fn call(
        &mut self,
        method: Method,
        path_and_query: &str,
        auth: Option<&HeaderValue>,
        content_type: Option<HeaderValue>,
        body: impl Into<Bytes>,
    ) -> Result<(Parts, Bytes)> {
        let uri: Uri = path_and_query.parse().context("request URI")?;
        let req = request(method, uri, &self.host, auth, content_type, body.into());
        send(&mut self.sender, req)
            .await
            .with_context(|| format!("request {path_and_query}"))
    }
}

/// The `Location` header of a redirect, or an error describing what came back instead.
pub fn location(parts: &Parts, body: &Bytes, what: &str) -> Result<String> {
    if parts.status != StatusCode::SEE_OTHER && parts.status != StatusCode::FOUND {
        bail!(
            "{what}: expected a redirect, got {} {}",
            parts.status,
            snippet(body)
        );
    }
    parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("{what}: redirect without Location"))
}

/// The first 300 bytes of a body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let end = body.len().min(300);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// Whether `hay` contains `needle`.
#[inline]
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
