//! Turning stored values into text for people: neutralising control characters in strings an
//! agent chose, durations, timestamps and compact one-line renderings of event details.

use std::borrow::Cow;

use gatehouse_core::Millis;
use gatehouse_core::clock::rfc3339;
use serde_json::Value;

/// Makes a string an agent supplied (its name, a resource URL...) safe to print on a terminal.
///
/// A self-registered agent chooses its own `client_name`. Printed raw, escape sequences could
/// rewrite the prompt (clear the screen, fake "verified"), a newline could forge extra lines, and
/// bidirectional overrides could reorder what the person reads. Each such character is shown
/// escaped instead (`\u{1b}`, `\n`, `\u{202e}`).
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Cuts a string to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    Cow::Owned(out)
}

/// A time span for people: `1h 05m`, `1m 54s`, `9s`.
pub fn duration(ms: Millis) -> String {
    let secs = ms.max(0).div_euclid(1000);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A timestamp to the second, for tables: `2026-11-29 21:40:00`.
pub fn short_time(ms: Millis) -> String {
    let full = rfc3339(ms);
    // rfc3339 always yields `YYYY-MM-DDTHH:MM:SS.mmmZ`; keep the date and time to the second.
    full.get(..19).unwrap_or(&full).replacen('T', " ", 1)
}

/// An event's detail on one line: `key=value` pairs, nested objects flattened with dotted keys,
/// nulls left out, millisecond timestamps (`*_at`) shown as RFC 3339.
pub fn compact_detail(detail: &Value) -> String {
    let mut parts = Vec::new();
    match detail {
        Value::Object(_) => flatten("", detail, &mut parts),
        Value::Null => {}
        other => parts.push(scalar("", other)),
    }
    parts.join(" ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            // Sorted so the line reads the same whichever map order serde_json was built with.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        other => out.push(format!("{}={}", sanitize(prefix), scalar(prefix, other))),
    }
}

fn scalar(key: &str, v: &Value) -> String {
    match v {
        Value::String(s) => word(s),
        Value::Number(n) => match n.as_i64() {
            // Core stores times as milliseconds since the epoch; anything past 2001 is a time.
            Some(ms) if key.ends_with("_at") && ms > 1_000_000_000_000 => rfc3339(ms),
            _ => n.to_string(),
        },
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| scalar("", i)).collect();
            format!("[{}]", inner.join(","))
        }
        other => sanitize(&other.to_string()).into_owned(),
    }
}

/// A string as one unambiguous word: bare when it is, JSON-quoted when it has spaces, `=`, commas,
/// brackets or quotes in it (or is empty).
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '=' | '"' | ',' | '[' | ']'));
    if plain {
        sanitize(s).into_owned()
    } else {
        // JSON quoting escapes control characters; sanitize the rest (bidi overrides).
        sanitize(&Value::String(s.to_owned()).to_string()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sanitize_escapes_terminal_tricks() {
        assert_eq!(sanitize("Claude Code"), "Claude Code");
        assert_eq!(sanitize("evil\x1b[2Jname"), "evil\\u{1b}[2Jname");
        assert_eq!(sanitize("a\nScopes: none"), "a\\nScopes: none");
        assert_eq!(sanitize("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(sanitize("café ✓"), "café ✓");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(9_400), "9s");
        assert_eq!(duration(114_000), "1m 54s");
        assert_eq!(duration(3_900_000), "1h 05m");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn short_time_drops_millis() {
        assert_eq!(short_time(1_796_074_800_123), "2026-11-30 21:40:00");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a very long name", 6), "a ver…");
    }

    #[test]
    fn details_are_compact() {
        let d = json!({
            "approval_id": "apr_1",
            "client_name": "My agent",
            "scopes": ["mail.read", "mail.send"],
            "expires_at": 1_796_074_800_123_i64,
            "redirect_host": null,
            "summary": { "grants": 1, "tokens": 2 },
        });
        assert_eq!(
            compact_detail(&d),
            "approval_id=apr_1 client_name=\"My agent\" expires_at=2026-11-30T21:40:00.123Z \
             scopes=[mail.read,mail.send] summary.grants=1 summary.tokens=2"
        );
        assert_eq!(compact_detail(&json!({})), "");
        assert_eq!(compact_detail(&json!("text")), "text");
        assert_eq!(
            compact_detail(&json!({"reason": "bad\u{1b}x"})),
            "reason=bad\\u{1b}x"
        );
        assert_eq!(
            compact_detail(&json!({"reason": "two words\u{7}"})),
            "reason=\"two words\\u0007\""
        );
    }
}
