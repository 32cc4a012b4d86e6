//! Local-server hardening applied to every request: a `Host` that is not this server (DNS
//! rebinding) or an `Origin` from anywhere else, including `null` (a sandboxed page or file), is
//! refused with 403; every response says no-sniff, no-referrer, no framing and no caching, and
//! never carries CORS headers.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

fn refused(reason: &'static str) -> Response {
    let body = serde_json::json!({ "error": "forbidden", "error_description": reason });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Why a request must be refused, if it must.
pub(crate) fn check(
    headers: &HeaderMap,
    hosts: &[String],
    origins: &[String],
) -> Result<(), &'static str> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    match host {
        Some(h) if hosts.contains(&h) => {}
        Some(_) => return Err("this Host is not Gatehouse's loopback address"),
        None => return Err("a Host header is required"),
    }
    let mut all_origins = headers.get_all(header::ORIGIN).iter();
    if let Some(origin) = all_origins.next() {
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        if all_origins.next().is_some() || !origins.contains(&origin) {
            return Err("requests from other origins are refused");
        }
    }
    Ok(())
}

pub(crate) async fn guard(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if let Err(reason) = check(req.headers(), &state.allowed_hosts, &state.allowed_origins) {
        let endpoint = format!("{} {}", req.method(), req.uri().path());
        let shown = |name| {
            req.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("-")
        };
        let detail = format!(
            "{reason} (Host: {}, Origin: {})",
            shown(header::HOST),
            shown(header::ORIGIN)
        );
        let authority = state.authority.clone();
        // Recorded off the request path so a flood of refused requests cannot slow the refusals.
        tokio::spawn(async move { authority.record_rejection(&endpoint, &detail).await });
        return secure(refused(reason));
    }
    secure(next.run(req).await)
}

fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
    ] {
        h.remove(name);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn host_and_origin_rules() {
        let hosts: Vec<String> = vec![
            "127.0.0.1:5000".into(),
            "localhost:5000".into(),
            "[::1]:5000".into(),
        ];
        let origins: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("host", "127.0.0.1:5000")], true),
            (&[("host", "localhost:5000")], true),
            (&[("host", "LOCALHOST:5000")], true),
            (&[("host", "[::1]:5000")], true),
            (&[], false),
            (&[("host", "127.0.0.1")], false),
            (&[("host", "127.0.0.1:5001")], false),
            (&[("host", "evil.example:5000")], false),
            (
                &[
                    ("host", "127.0.0.1:5000"),
                    ("origin", "http://127.0.0.1:5000"),
                ],
                true,
            ),
            (
                &[
                    ("host", "127.0.0.1:5000"),
                    ("origin", "http://localhost:5000"),
                ],
                true,
            ),
            (&[("host", "127.0.0.1:5000"), ("origin", "null")], false),
            (
                &[
                    ("host", "127.0.0.1:5000"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (
                &[
                    ("host", "127.0.0.1:5000"),
                    ("origin", "http://127.0.0.1:5001"),
                ],
                false,
            ),
            (
                &[
                    ("host", "127.0.0.1:5000"),
                    ("sec-fetch-mode", "cors"),
                    ("sec-fetch-site", "cross-site"),
                ],
                true,
            ),
        ];
        for (h, ok) in cases {
            assert_eq!(check(&headers(h), &hosts, &origins).is_ok(), *ok, "{h:?}");
        }
    }
}
