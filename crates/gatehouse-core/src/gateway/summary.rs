//! The short body summary shown when a gateway write asks the person: content type, size and,
//! for JSON, form and text bodies, a readable preview of the start with long values cut and the
//! values of secret-looking keys redacted. Works on a bounded prefix of the body, so a truncated
//! (still streaming) JSON document is summarized without being parsed whole.

/// How many bytes of a request body the gateway reads before asking (the rest streams later).
pub const PREVIEW_BYTES: usize = 4096;
/// The longest preview, in characters (an ellipsis marks a cut).
pub const PREVIEW_CHARS: usize = 120;
/// The longest single value shown in a JSON or form preview, in characters.
pub const VALUE_CHARS: usize = 40;
/// What replaces the value of a secret-looking key.
pub const REDACTED: &str = "[redacted]";

const ELLIPSIS: char = '…';

/// Whether a JSON or form key names something secret (its value is never shown).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "authoriz",
        "credential",
        "cookie",
        "session",
        "signature",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// What the gateway knows of a request body when it asks.
#[derive(Debug, Clone, Copy)]
pub struct BodySample<'a> {
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Content-Length` header, if any.
    pub declared_len: Option<u64>,
    /// The first bytes of the body (at most about [`PREVIEW_BYTES`]).
    pub prefix: &'a [u8],
    /// Whether `prefix` is the whole body (the stream ended while it was read).
    pub complete: bool,
}

/// The kinds of body that get a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readable {
    Json,
    Form,
    Text,
}

fn readable(media_type: &str) -> Option<Readable> {
    let (top, sub) = media_type.split_once('/')?;
    match (top, sub) {
        (_, "json") | (_, "x-ndjson") => Some(Readable::Json),
        (_, s) if s.ends_with("+json") => Some(Readable::Json),
        ("application", "x-www-form-urlencoded") => Some(Readable::Form),
        ("text", _) => Some(Readable::Text),
        ("application", "xml") | ("application", "graphql") => Some(Readable::Text),
        _ => None,
    }
}

/// `application/json, 17 bytes: {"title":"hello"}`: the media type (without parameters), the
/// exact size when known (`size unknown (streamed)` otherwise), and a preview for readable types.
pub fn summarize(s: &BodySample<'_>) -> String {
    let media_type = s
        .content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|m| !m.is_empty());
    let size = if s.complete {
        Some(s.prefix.len() as u64)
    } else {
        s.declared_len
    };
    if size == Some(0) {
        return "empty body".into();
    }
    let mut out = media_type
        .clone()
        .unwrap_or_else(|| "no content type".into());
    out.push_str(", ");
    out.push_str(&match size {
        Some(1) => "1 byte".to_owned(),
        Some(n) => format!("{n} bytes"),
        None => "size unknown (streamed)".to_owned(),
    });
    let preview = match media_type.as_deref().and_then(readable) {
        Some(Readable::Json) => Some(json_preview(&text_of(s.prefix, s.complete))),
        Some(Readable::Form) => Some(form_preview(&text_of(s.prefix, s.complete))),
        Some(Readable::Text) => Some(text_preview(&text_of(s.prefix, s.complete))),
        None => None,
    };
    if let Some(mut p) = preview.filter(|p| !p.is_empty()) {
        // A prefix of a longer body is always marked as cut, even when the preview fits.
        if !s.complete && !p.ends_with(ELLIPSIS) {
            p.push(ELLIPSIS);
        }
        out.push_str(": ");
        out.push_str(&p);
    }
    out
}

/// The prefix as text; a multi-byte character cut at the end of a partial prefix is dropped.
fn text_of(prefix: &[u8], complete: bool) -> String {
    let mut t = String::from_utf8_lossy(prefix).into_owned();
    if !complete {
        while t.ends_with(char::REPLACEMENT_CHARACTER) {
            t.pop();
        }
    }
    t
}

/// Appends to a preview up to [`PREVIEW_CHARS`]; false (and an ellipsis) once it is full.
struct Preview {
    out: String,
    chars: usize,
    full: bool,
}

impl Preview {
    fn new() -> Self {
        Self {
            out: String::new(),
            chars: 0,
            full: false,
        }
    }
    fn push(&mut self, c: char) -> bool {
        if self.full {
            return false;
        }
        if self.chars == PREVIEW_CHARS {
            self.out.push(ELLIPSIS);
            self.full = true;
            return false;
        }
        self.out.push(c);
        self.chars += 1;
        true
    }
    fn push_str(&mut self, s: &str) -> bool {
        s.chars().all(|c| self.push(c))
    }
}

/// `s` cut to [`VALUE_CHARS`] characters, with an ellipsis when cut.
fn cut_value(s: &str) -> String {
    let mut out: String = s.chars().take(VALUE_CHARS).collect();
    if s.chars().nth(VALUE_CHARS).is_some() {
        out.push(ELLIPSIS);
    }
    out
}

/// Whitespace runs become one space; control characters go.
fn text_preview(text: &str) -> String {
    let mut p = Preview::new();
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if c.is_control() {
            continue;
        }
        if space && !p.push(' ') {
            break;
        }
        space = false;
        if !p.push(c) {
            break;
        }
    }
    p.out
}

/// `key=value&...` decoded, values cut, secret-looking keys redacted.
fn form_preview(text: &str) -> String {
    let mut p = Preview::new();
    for (i, (k, v)) in url::form_urlencoded::parse(text.trim().as_bytes()).enumerate() {
        let v = if is_secret_key(&k) {
            REDACTED.to_owned()
        } else {
            cut_value(&v)
        };
        let k = cut_value(&k);
        let sep = if i == 0 { "" } else { "&" };
        if !p.push_str(&format!("{sep}{k}={v}")) {
            break;
        }
    }
    p.out
}

/// A lenient pass over (possibly truncated) JSON text: whitespace outside strings goes, string
/// values are cut to [`VALUE_CHARS`], and the whole value of a secret-looking key (a string,
/// number, literal, object or array) becomes `"[redacted]"`. Not a validator: invalid JSON comes
/// out as readable text with the same treatment.
fn json_preview(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Preview::new();
    let mut i = 0;
    // Set after a secret-looking key and its colon: the next value is redacted.
    let mut redact_next = false;
    let mut last_key_secret = false;
    while i < chars.len() && !p.full {
        let c = chars[i];
        match c {
            '"' => {
                let (s, end) = json_string(&chars, i);
                i = end;
                let is_key = next_non_space(&chars, i) == Some(':');
                if is_key {
                    last_key_secret = is_secret_key(&s);
                    p.push_str(&format!("\"{}\"", cut_value(&s)));
                } else if redact_next {
                    redact_next = false;
                    p.push_str(&format!("\"{REDACTED}\""));
                } else {
                    p.push_str(&format!("\"{}\"", cut_value(&s)));
                }
            }
            ':' => {
                redact_next = last_key_secret;
                last_key_secret = false;
                p.push(':');
                i += 1;
            }
            '{' | '[' if redact_next => {
                redact_next = false;
                i = skip_nested(&chars, i);
                p.push_str(&format!("\"{REDACTED}\""));
            }
            c if c.is_whitespace() => i += 1,
            c if redact_next && !matches!(c, ',' | '}' | ']') => {
                // A number or a literal (true, false, null).
                redact_next = false;
                while i < chars.len()
                    && !matches!(chars[i], ',' | '}' | ']')
                    && !chars[i].is_whitespace()
                {
                    i += 1;
                }
                p.push_str(&format!("\"{REDACTED}\""));
            }
            c => {
                redact_next = false;
                p.push(c);
                i += 1;
            }
        }
    }
    p.out
}

/// The decoded string starting at the quote `chars[start]`, and the index after its closing
/// quote (or the end of the text, when it was cut).
fn json_string(chars: &[char], start: usize) -> (String, usize) {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return (s, i + 1),
            '\\' => {
                match chars.get(i + 1) {
                    Some('n') | Some('r') | Some('t') => s.push(' '),
                    Some('u') => {
                        let hex: String = chars.iter().skip(i + 2).take(4).collect();
                        if let Some(ch) =
                            u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            s.push(ch);
                        }
                        i += 4;
                    }
                    Some(&other) => s.push(other),
                    None => {}
                }
                i += 2;
            }
            c if c.is_control() => i += 1,
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    (s, chars.len())
}

fn next_non_space(chars: &[char], from: usize) -> Option<char> {
    chars[from.min(chars.len())..]
        .iter()
        .copied()
        .find(|c| !c.is_whitespace())
}

/// The index after the object or array opening at `chars[start]` (strings may hold brackets).
fn skip_nested(chars: &[char], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '"' => {
                i = json_string(chars, i).1;
                continue;
            }
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole<'a>(ct: Option<&'a str>, body: &'a [u8]) -> BodySample<'a> {
        BodySample {
            content_type: ct,
            declared_len: Some(body.len() as u64),
            prefix: body,
            complete: true,
        }
    }

    #[test]
    fn summaries() {
        let long_value = "x".repeat(100);
        let long_json = format!(r#"{{"title":"{long_value}","n":1}}"#);
        let many = (0..40)
            .map(|i| format!(r#""k{i}":{i}"#))
            .collect::<Vec<_>>()
            .join(",");
        let many = format!("{{{many}}}");
        let cases: Vec<(BodySample<'_>, &str)> = vec![
            (
                whole(Some("application/json"), br#"{"title": "hello"}"#),
                r#"application/json, 18 bytes: {"title":"hello"}"#,
            ),
            (
                whole(
                    Some("application/json; charset=utf-8"),
                    br#"{"user":"ann","password":"hunter2","api_key":12345,"auth":{"token":"t"},"ok":true}"#,
                ),
                r#"application/json, 82 bytes: {"user":"ann","password":"[redacted]","api_key":"[redacted]","auth":{"token":"[redacted]"},"ok":true}"#,
            ),
            (
                whole(
                    Some("application/vnd.api+json"),
                    br#"{"client_secret":{"a":[1,"}"]},"Authorization":"Bearer x","items":[1, 2]}"#,
                ),
                r#"application/vnd.api+json, 73 bytes: {"client_secret":"[redacted]","Authorization":"[redacted]","items":[1,2]}"#,
            ),
            (
                whole(Some("application/json"), long_json.as_bytes()),
                "application/json, 118 bytes: {\"title\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\",\"n\":1}",
            ),
            (
                whole(Some("application/json"), many.as_bytes()),
                "application/json, 341 bytes: {\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15…",
            ),
            (
                // A prefix of a streamed body: cut inside a secret's value and still redacted.
                BodySample {
                    content_type: Some("application/json"),
                    declared_len: None,
                    prefix: br#"{"name":"a","token":"abcdef"#,
                    complete: false,
                },
                r#"application/json, size unknown (streamed): {"name":"a","token":"[redacted]"…"#,
            ),
            (
                BodySample {
                    content_type: Some("application/json"),
                    declared_len: Some(20_000_000),
                    prefix: br#"{"data":[1,2"#,
                    complete: false,
                },
                r#"application/json, 20000000 bytes: {"data":[1,2…"#,
            ),
            (
                whole(
                    Some("application/x-www-form-urlencoded"),
                    b"grant=x&password=p%40ss&note=hello+world&client_secret=abc",
                ),
                "application/x-www-form-urlencoded, 58 bytes: grant=x&password=[redacted]&note=hello world&client_secret=[redacted]",
            ),
            (
                whole(Some("text/plain"), b"  line one\n\n\tline\x07 two  "),
                "text/plain, 24 bytes: line one line two",
            ),
            (
                BodySample {
                    content_type: Some("text/plain"),
                    declared_len: None,
                    prefix: "caf\u{e9}".as_bytes().split_at(4).0,
                    complete: false,
                },
                "text/plain, size unknown (streamed): caf…",
            ),
            (
                whole(Some("application/octet-stream"), &[0, 1, 2, 3]),
                "application/octet-stream, 4 bytes",
            ),
            (whole(None, b"abc"), "no content type, 3 bytes"),
            (whole(Some("application/json"), b""), "empty body"),
            (whole(Some("text/plain"), b"x"), "text/plain, 1 byte: x"),
            (
                BodySample {
                    content_type: Some("image/png"),
                    declared_len: None,
                    prefix: &[0x89, b'P'],
                    complete: false,
                },
                "image/png, size unknown (streamed)",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(sample, want)| summarize(sample) != *want)
            .map(|(sample, want)| format!("want {want}\n got {}", summarize(sample)))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn previews_are_bounded() {
        let huge = format!("{{\"a\":\"{}\"}}", "y".repeat(10_000));
        let s = summarize(&whole(Some("application/json"), huge.as_bytes()));
        let preview = s.split_once(": ").map(|x| x.1).unwrap_or("");
        assert!(preview.chars().count() <= PREVIEW_CHARS + 1, "{s}");
        let text = "word ".repeat(1000);
        let s = summarize(&whole(Some("text/markdown"), text.as_bytes()));
        assert!(s.ends_with('…'), "{s}");
        assert!(s.chars().count() < PREVIEW_CHARS + 40, "{s}");
    }

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "Password",
            "new_passwd",
            "access_token",
            "refresh_token",
            "client_secret",
            "apiKey",
            "X-Api-Key",
            "authorization",
            "Cookie",
            "session_id",
            "credentials",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["title", "body", "name", "email", "count", "author"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
