//! The few HTML pages the browser sees: an error page (never a redirect to an untrusted URI) and
//! the waiting page shown while the person decides in Gatehouse. Neither can approve anything.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str, refresh: Option<u32>) -> Response {
    let refresh = refresh
        .map(|s| format!(r#"<meta http-equiv="refresh" content="{s}">"#))
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">{refresh}
<title>{title} · Gatehouse</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1d2433;background:#f7f8fa}}
h1{{font-size:1.3rem}}main{{background:#fff;border:1px solid #dde1e8;border-radius:10px;padding:1.5rem 1.75rem}}
.muted{{color:#5a6475;font-size:.9rem}}</style></head>
<body><main><h1>{title}</h1>{body}<p class="muted">Gatehouse · local authorization for your AI agents</p></main></body></html>"#,
        title = escape(title),
    );
    let mut res = (status, Html(html)).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    res
}

pub(crate) fn error(status: u16, title: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    page(status, title, &format!("<p>{}</p>", escape(message)), None)
}

pub(crate) fn waiting(agent: &str, seconds_left: i64) -> Response {
    let body = format!(
        "<p><strong>{}</strong> asked for access. Approve or deny it in Gatehouse (the app or the terminal running \
         <code>gatehouse serve</code>); this page cannot approve anything.</p><p>This page continues on its own once you \
         decide. The request expires in about {} s.</p>",
        escape(agent),
        seconds_left.max(0)
    );
    page(StatusCode::OK, "Waiting for your decision", &body, Some(2))
}

/// The RFC 8628 verification page. It cannot approve anything: it sends the person to Gatehouse.
pub(crate) fn device(user_code: Option<&str>) -> Response {
    let code = match user_code {
        Some(c) => format!(
            "<p>The agent shows the code <strong><code>{}</code></strong>. Check that the request in \
             Gatehouse shows the same code before you approve it.</p>",
            escape(c)
        ),
        None => "<p>Check that the code the agent shows is the code on the request in Gatehouse \
                 before you approve it.</p>"
            .into(),
    };
    let body = format!(
        "<p>Approve or deny the agent's request in Gatehouse (the app or the terminal running \
         <code>gatehouse serve</code>); this page cannot approve anything.</p>{code}"
    );
    page(StatusCode::OK, "Approve in Gatehouse", &body, None)
}
