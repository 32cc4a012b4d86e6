//! RFC 9396 rich authorization requests: parses and validates the `authorization_details`
//! parameter against the action types Gatehouse knows, and renders each detail for a person.

use serde_json::{Map, Value};
use url::Url;

/// Every `type` Gatehouse accepts (advertised as `authorization_details_types_supported`).
pub const TYPES: &[&str] = &[
    "api_request",
    "message_send",
    "data_delete",
    "payment",
    "mcp_tool_call",
    "generic",
];

/// At most this many details in one request.
pub const MAX_DETAILS: usize = 10;
/// At most this many characters in any string field.
pub const MAX_STRING: usize = 2000;
/// At most this many bytes in an `mcp_tool_call`'s `arguments`, serialized.
pub const MAX_ARGUMENTS_BYTES: usize = 8 * 1024;
/// At most this many items in any array field (recipients, attachments, common fields).
pub const MAX_ITEMS: usize = 100;
/// At most this many bytes in the raw parameter.
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// The RFC 9396 §2.2 fields every type accepts.
const COMMON: &[&str] = &[
    "actions",
    "locations",
    "datatypes",
    "identifier",
    "privileges",
];

/// Why an `authorization_details` value was refused; the message says exactly what is wrong and
/// is safe to return to the client as the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RarError(pub String);

impl From<RarError> for super::OAuthError {
    fn from(e: RarError) -> Self {
        super::OAuthError::new(super::ErrorCode::InvalidAuthorizationDetails, e.0)
    }
}

/// What a detail asks for, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    ApiRequest {
        method: String,
        url: String,
    },
    MessageSend {
        channel: String,
        recipients: Vec<String>,
        subject: Option<String>,
        attachments: Vec<String>,
    },
    DataDelete {
        what: String,
        location: String,
    },
    Payment {
        amount: String,
        currency: String,
        payee: String,
    },
    McpToolCall {
        server: String,
        tool: String,
        arguments: Map<String, Value>,
    },
    Generic {
        description: String,
    },
}

/// RFC 9396 §2.2 common fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Common {
    pub actions: Vec<String>,
    pub locations: Vec<String>,
    pub datatypes: Vec<String>,
    pub identifier: Option<String>,
    pub privileges: Vec<String>,
}

/// One validated authorization detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub action: Action,
    pub common: Common,
    /// The detail as validated and normalized: what is stored, shown, granted and echoed.
    pub json: Value,
}

impl Detail {
    /// The detail's `type`.
    pub fn type_name(&self) -> &'static str {
        match self.action {
            Action::ApiRequest { .. } => "api_request",
            Action::MessageSend { .. } => "message_send",
            Action::DataDelete { .. } => "data_delete",
            Action::Payment { .. } => "payment",
            Action::McpToolCall { .. } => "mcp_tool_call",
            Action::Generic { .. } => "generic",
        }
    }
}

/// The normalized JSON array of validated details (for storage, tokens and echo).
pub fn to_json(details: &[Detail]) -> Value {
    Value::Array(details.iter().map(|d| d.json.clone()).collect())
}

/// Parses the `authorization_details` parameter: a JSON array of objects, each with a known
/// `type` and that type's fields (RFC 9396 §2).
pub fn parse(raw: &str) -> Result<Vec<Detail>, RarError> {
    if raw.len() > MAX_RAW_BYTES {
        return Err(RarError(format!(
            "authorization_details is too long ({} bytes; at most {MAX_RAW_BYTES})",
            raw.len()
        )));
    }
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| RarError(format!("authorization_details is not valid JSON: {e}")))?;
    parse_value(&value)
}

/// Validates an already-decoded `authorization_details` value (also used to re-read stored ones).
pub fn parse_value(value: &Value) -> Result<Vec<Detail>, RarError> {
    let Value::Array(items) = value else {
        return Err(RarError(
            "authorization_details must be a JSON array of objects".into(),
        ));
    };
    if items.is_empty() {
        return Err(RarError(
            "authorization_details must not be an empty array".into(),
        ));
    }
    if items.len() > MAX_DETAILS {
        return Err(RarError(format!(
            "authorization_details has {} entries; at most {MAX_DETAILS} are allowed",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_one(i, item))
        .collect()
}

/// Reads one object's fields, remembering which were used, so unknown ones can be refused.
struct Fields<'a> {
    at: String,
    obj: &'a Map<String, Value>,
    out: Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, what: &str) -> RarError {
        RarError(format!("{}: {field} {what}", self.at))
    }

    fn check_len(&self, field: &str, s: &str) -> Result<(), RarError> {
        let n = s.chars().count();
        if n > MAX_STRING {
            return Err(self.err(
                field,
                &format!("is too long ({n} characters; at most {MAX_STRING})"),
            ));
        }
        Ok(())
    }

    fn opt_string(&mut self, field: &str) -> Result<Option<String>, RarError> {
        match self.obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                self.check_len(field, s)?;
                if s.trim().is_empty() {
                    return Err(self.err(field, "must not be empty"));
                }
                self.out.insert(field.into(), Value::String(s.clone()));
                Ok(Some(s.clone()))
            }
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn string(&mut self, field: &str) -> Result<String, RarError> {
        self.opt_string(field)?
            .ok_or_else(|| self.err(field, "is required (a string)"))
    }

    fn opt_strings(&mut self, field: &str) -> Result<Option<Vec<String>>, RarError> {
        let Some(v) = self.obj.get(field) else {
            return Ok(None);
        };
        let Value::Array(items) = v else {
            return Err(self.err(field, "must be an array of strings"));
        };
        if items.len() > MAX_ITEMS {
            return Err(self.err(
                field,
                &format!("has {} items; at most {MAX_ITEMS} are allowed", items.len()),
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            let Value::String(s) = item else {
                return Err(self.err(&format!("{field}[{j}]"), "must be a string"));
            };
            self.check_len(&format!("{field}[{j}]"), s)?;
            if s.trim().is_empty() {
                return Err(self.err(&format!("{field}[{j}]"), "must not be empty"));
            }
            out.push(s.clone());
        }
        self.out.insert(
            field.into(),
            Value::Array(out.iter().cloned().map(Value::String).collect()),
        );
        Ok(Some(out))
    }

    fn common(&mut self) -> Result<Common, RarError> {
        let locations = self.opt_strings("locations")?.unwrap_or_default();
        for (j, l) in locations.iter().enumerate() {
            if Url::parse(l).is_err() {
                return Err(self.err(&format!("locations[{j}]"), "must be an absolute URI"));
            }
        }
        Ok(Common {
            actions: self.opt_strings("actions")?.unwrap_or_default(),
            locations,
            datatypes: self.opt_strings("datatypes")?.unwrap_or_default(),
            identifier: self.opt_string("identifier")?,
            privileges: self.opt_strings("privileges")?.unwrap_or_default(),
        })
    }
}

fn parse_one(i: usize, item: &Value) -> Result<Detail, RarError> {
    let Value::Object(obj) = item else {
        return Err(RarError(format!(
            "authorization_details[{i}] must be a JSON object"
        )));
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(RarError(format!(
                "authorization_details[{i}]: type must be a string"
            )));
        }
        None => {
            return Err(RarError(format!(
                "authorization_details[{i}]: type is required"
            )));
        }
    };
    let Some(ty) = TYPES.iter().find(|t| **t == ty) else {
        return Err(RarError(format!(
            "authorization_details[{i}]: unknown type {:?}; supported types are {}",
            truncate(&sanitize(ty), 60),
            TYPES.join(", ")
        )));
    };
    let mut f = Fields {
        at: format!("authorization_details[{i}] ({ty})"),
        obj,
        out: Map::new(),
    };
    f.out.insert("type".into(), Value::String((*ty).into()));
    let (action, own): (Action, &[&str]) = match *ty {
        "api_request" => {
            let method = f.string("method")?;
            let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if !method.chars().all(tchar) {
                return Err(f.err("method", "must be an HTTP method token (e.g. GET)"));
            }
            let method = method.to_ascii_uppercase();
            f.out.insert("method".into(), Value::String(method.clone()));
            let raw = f.string("url")?;
            let url = match Url::parse(&raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => u,
                _ => return Err(f.err("url", "must be an absolute http or https URL")),
            };
            f.out.insert("url".into(), Value::String(url.to_string()));
            (
                Action::ApiRequest {
                    method,
                    url: url.into(),
                },
                &["method", "url"],
            )
        }
        "message_send" => {
            let channel = f.string("channel")?;
            let recipients = f
                .opt_strings("recipients")?
                .ok_or_else(|| f.err("recipients", "is required (a non-empty array of strings)"))?;
            if recipients.is_empty() {
                return Err(f.err("recipients", "must not be empty"));
            }
            let subject = f.opt_string("subject")?;
            let attachments = f.opt_strings("attachments")?.unwrap_or_default();
            (
                Action::MessageSend {
                    channel,
                    recipients,
                    subject,
                    attachments,
                },
                &["channel", "recipients", "subject", "attachments"],
            )
        }
        "data_delete" => {
            let what = f.string("what")?;
            let location = f.string("where")?;
            (Action::DataDelete { what, location }, &["what", "where"])
        }
        "payment" => {
            let amount = match obj.get("amount") {
                None => return Err(f.err("amount", "is required (a decimal string or number)")),
                Some(Value::String(s)) if is_decimal(s) => s.clone(),
                Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x.is_finite()) => {
                    n.to_string()
                }
                Some(_) => {
                    return Err(f.err(
                        "amount",
                        "must be a positive decimal amount (e.g. \"12.50\")",
                    ));
                }
            };
            if !is_decimal(&amount) || !amount.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
                return Err(f.err("amount", "must be greater than zero"));
            }
            f.out.insert("amount".into(), Value::String(amount.clone()));
            let currency = f.string("currency")?;
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(f.err(
                    "currency",
                    "must be an ISO 4217 code of 3 letters (e.g. EUR)",
                ));
            }
            let currency = currency.to_ascii_uppercase();
            f.out
                .insert("currency".into(), Value::String(currency.clone()));
            let payee = f.string("payee")?;
            (
                Action::Payment {
                    amount,
                    currency,
                    payee,
                },
                &["amount", "currency", "payee"],
            )
        }
        "mcp_tool_call" => {
            let server = f.string("server")?;
            let tool = f.string("tool")?;
            let arguments = match obj.get("arguments") {
                Some(Value::Object(m)) => m.clone(),
                Some(_) => return Err(f.err("arguments", "must be a JSON object")),
                None => return Err(f.err("arguments", "is required (a JSON object)")),
            };
            let size = serde_json::to_string(&arguments).map_or(usize::MAX, |s| s.len());
            if size > MAX_ARGUMENTS_BYTES {
                return Err(f.err(
                    "arguments",
                    &format!("is too large ({size} bytes; at most {MAX_ARGUMENTS_BYTES})"),
                ));
            }
            f.out
                .insert("arguments".into(), Value::Object(arguments.clone()));
            (
                Action::McpToolCall {
                    server,
                    tool,
                    arguments,
                },
                &["server", "tool", "arguments"],
            )
        }
        _ => {
            let description = f.string("description")?;
            (Action::Generic { description }, &["description"])
        }
    };
    let common = f.common()?;
    if let Some(unknown) = obj
        .keys()
        .find(|k| *k != "type" && !own.contains(&k.as_str()) && !COMMON.contains(&k.as_str()))
    {
        return Err(RarError(format!(
            "{}: unknown field {:?} (this type accepts {}, and {})",
            f.at,
            truncate(&sanitize(unknown), 60),
            own.join(", "),
            COMMON.join(", ")
        )));
    }
    Ok(Detail {
        action,
        common,
        json: Value::Object(f.out),
    })
}

/// `1`, `12.50`: digits with an optional fraction, at most 18 digits before the point.
fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.len() <= 18
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac
            .is_none_or(|f| !f.is_empty() && f.len() <= 18 && f.bytes().all(|b| b.is_ascii_digit()))
}

// ---- rendering ---------------------------------------------------------------------------------

/// A detail as shown to a person: one line that can be understood in seconds, labelled lines with
/// the particulars, and warnings that deserve a second look.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    pub summary: String,
    pub lines: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// How long a value may be in a summary, and in a line.
const SUMMARY_VALUE: usize = 120;
const LINE_VALUE: usize = 300;
/// At most this many `mcp_tool_call` arguments are shown one per line.
const MAX_ARGUMENT_LINES: usize = 20;

/// Strips control, bidirectional-override and zero-width characters so an agent's string is shown
/// as the data it is; line breaks and tabs become spaces.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Shortens `s` to `max` characters, saying how much was left out.
pub fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max).collect();
    format!("{kept}… ({} more characters)", n - max)
}

fn shown(s: &str, max: usize) -> String {
    truncate(&sanitize(s), max)
}

/// The domain of an email-like recipient (`alex@x.example`, `Alex <alex@x.example>`), lower-cased.
fn email_domain(recipient: &str) -> Option<String> {
    let addr = match (recipient.rfind('<'), recipient.rfind('>')) {
        (Some(a), Some(b)) if a < b => &recipient[a + 1..b],
        _ => recipient,
    };
    let (_, domain) = addr.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty() && domain.contains('.')).then_some(domain)
}

/// Whether `domain` is one of `own` or a subdomain of one.
fn is_own(domain: &str, own: &[String]) -> bool {
    own.iter().any(|o| {
        let o = o.trim_end_matches('.').to_ascii_lowercase();
        domain == o || domain.ends_with(&format!(".{o}"))
    })
}

/// Normalizes a domain for the own-domains setting: lower-case, no trailing dot, DNS labels of
/// letters, digits and hyphens, at least two labels. `None` if it is not a domain.
pub fn normalize_domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = d.strip_prefix('@').unwrap_or(&d).to_owned();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(d)
}

fn list(items: &[String], max_items: usize) -> String {
    let mut shown_items: Vec<String> = items
        .iter()
        .take(max_items)
        .map(|s| shown(s, SUMMARY_VALUE))
        .collect();
    if items.len() > max_items {
        shown_items.push(format!("{} more", items.len() - max_items));
    }
    shown_items.join(", ")
}

fn channel_phrase(channel: &str) -> String {
    match channel.to_ascii_lowercase().as_str() {
        "email" | "e-mail" | "mail" => "an email".into(),
        "slack" => "a Slack message".into(),
        "sms" => "an SMS".into(),
        "teams" => "a Teams message".into(),
        other => format!("a {} message", shown(other, 40)),
    }
}

/// Renders one detail for a person. `own_domains` are the person's email domains: a
/// `message_send` recipient outside them is flagged.
pub fn render(detail: &Detail, own_domains: &[String]) -> Rendered {
    let mut r = Rendered::default();
    match &detail.action {
        Action::ApiRequest { method, url } => {
            r.summary = format!("Call {method} {}", shown(url, SUMMARY_VALUE));
            r.lines.push(("Method".into(), method.clone()));
            r.lines.push(("URL".into(), shown(url, LINE_VALUE)));
            if method == "DELETE" {
                r.warnings.push(format!(
                    "This DELETE request may remove data at {}",
                    shown(url, SUMMARY_VALUE)
                ));
            }
        }
        Action::MessageSend {
            channel,
            recipients,
            subject,
            attachments,
        } => {
            let emails: Vec<(&String, String)> = recipients
                .iter()
                .filter_map(|r| email_domain(r).map(|d| (r, d)))
                .collect();
            let external: Vec<String> = if own_domains.is_empty() {
                Vec::new()
            } else {
                emails
                    .iter()
                    .filter(|(_, d)| !is_own(d, own_domains))
                    .map(|(r, _)| (*r).clone())
                    .collect()
            };
            let mut s = format!(
                "Send {} to {}",
                channel_phrase(channel),
                list(recipients, 3)
            );
            match attachments.len() {
                0 => {}
                1 => s.push_str(&format!(
                    " with the attachment {}",
                    shown(&attachments[0], 60)
                )),
                n => s.push_str(&format!(" with {n} attachments")),
            }
            if recipients.len() == 1 && external.len() == 1 {
                s.push_str(" — outside your domain");
            } else if !external.is_empty() {
                s.push_str(&format!(" — outside your domains: {}", list(&external, 3)));
            }
            r.summary = s;
            r.lines.push(("Channel".into(), shown(channel, LINE_VALUE)));
            r.lines.push((
                "Recipients".into(),
                recipients
                    .iter()
                    .map(|x| shown(x, LINE_VALUE))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            if let Some(subject) = subject {
                r.lines.push(("Subject".into(), shown(subject, LINE_VALUE)));
            }
            if !attachments.is_empty() {
                r.lines.push((
                    "Attachments".into(),
                    attachments
                        .iter()
                        .map(|x| shown(x, LINE_VALUE))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            if own_domains.is_empty() {
                if !emails.is_empty() {
                    r.warnings
                        .push("check the recipients: no own domains are set".into());
                }
            } else {
                for x in &external {
                    r.warnings.push(format!(
                        "{} is outside your domains ({})",
                        shown(x, SUMMARY_VALUE),
                        own_domains.join(", ")
                    ));
                }
            }
        }
        Action::DataDelete { what, location } => {
            r.summary = format!(
                "Delete {} from {}",
                shown(what, SUMMARY_VALUE),
                shown(location, SUMMARY_VALUE)
            );
            r.lines.push(("What".into(), shown(what, LINE_VALUE)));
            r.lines.push(("Where".into(), shown(location, LINE_VALUE)));
            r.warnings.push(format!(
                "This deletes data and may not be undone: {} in {}",
                shown(what, SUMMARY_VALUE),
                shown(location, SUMMARY_VALUE)
            ));
        }
        Action::Payment {
            amount,
            currency,
            payee,
        } => {
            r.summary = format!("Pay {amount} {currency} to {}", shown(payee, SUMMARY_VALUE));
            r.lines
                .push(("Amount".into(), format!("{amount} {currency}")));
            r.lines.push(("Payee".into(), shown(payee, LINE_VALUE)));
            r.warnings.push(format!(
                "This moves money: {amount} {currency} to {}",
                shown(payee, SUMMARY_VALUE)
            ));
        }
        Action::McpToolCall {
            server,
            tool,
            arguments,
        } => {
            r.summary = format!(
                "Call the tool {} on the MCP server {}",
                shown(tool, SUMMARY_VALUE),
                shown(server, SUMMARY_VALUE)
            );
            r.lines.push(("Server".into(), shown(server, LINE_VALUE)));
            r.lines.push(("Tool".into(), shown(tool, LINE_VALUE)));
            for (k, v) in arguments.iter().take(MAX_ARGUMENT_LINES) {
                r.lines
                    .push((format!("Argument {}", shown(k, 60)), argument_text(k, v)));
            }
            if arguments.len() > MAX_ARGUMENT_LINES {
                r.lines.push((
                    "Arguments".into(),
                    format!("{} more not shown", arguments.len() - MAX_ARGUMENT_LINES),
                ));
            }
        }
        Action::Generic { description } => {
            r.summary = shown(description, SUMMARY_VALUE);
            r.lines
                .push(("Description".into(), shown(description, LINE_VALUE)));
        }
    }
    let c = &detail.common;
    for (label, items) in [
        ("Actions", &c.actions),
        ("Locations", &c.locations),
        ("Data types", &c.datatypes),
        ("Privileges", &c.privileges),
    ] {
        if !items.is_empty() {
            r.lines.push((label.into(), list(items, 10)));
        }
    }
    if let Some(id) = &c.identifier {
        r.lines.push(("Identifier".into(), shown(id, LINE_VALUE)));
    }
    r
}

const REDACTED: &str = "[redacted]";

/// Words that mark an argument name as holding a secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "apikey",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "bearer",
];

/// Prefixes of well-known secret formats.
const SECRET_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "sk-",
    "sk_live_",
    "rk_live_",
    "xox",
    "gth_",
    "glpat-",
    "AKIA",
    "eyJ",
];

/// Whether an argument name says it holds a secret (`api_key`, `accessToken`, `X-Api-Key`...).
fn is_secret_name(name: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// Whether a string value looks like a secret (a known prefix at the start of any word, or a
/// `Bearer` credential).
fn looks_secret(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '=' || c == ':')
        .any(|w| {
            SECRET_PREFIXES
                .iter()
                .any(|p| w.len() > p.len() + 4 && w.starts_with(p))
        })
}

/// A copy of `v` with secret-looking values replaced.
fn redact(v: &Value) -> Value {
    match v {
        Value::String(s) if looks_secret(s) => Value::String(REDACTED.into()),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if is_secret_name(k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One argument as shown: secrets redacted, strings plain, other values as compact JSON, long
/// values truncated.
fn argument_text(name: &str, v: &Value) -> String {
    if is_secret_name(name) && !v.is_null() {
        return REDACTED.into();
    }
    match redact(v) {
        Value::String(s) => shown(&s, LINE_VALUE),
        other => shown(&other.to_string(), LINE_VALUE),
    }
}

/// Renders every detail: one summary line each, and every warning.
pub fn render_all(details: &[Detail], own_domains: &[String]) -> (Vec<String>, Vec<String>) {
    let mut summary = Vec::with_capacity(details.len());
    let mut warnings = Vec::new();
    for d in details {
        let r = render(d, own_domains);
        summary.push(r.summary);
        for w in r.warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    (summary, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Result<Detail, RarError> {
        parse(&Value::Array(vec![v]).to_string()).map(|mut d| d.remove(0))
    }

    fn own(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn valid_details_of_every_type() {
        let cases = [
            json!({"type": "api_request", "method": "get", "url": "https://api.example.com/v1/x"}),
            json!({"type": "message_send", "channel": "email", "recipients": ["alex@example.com"], "subject": "Budget", "attachments": ["deck.pdf"]}),
            json!({"type": "message_send", "channel": "slack", "recipients": ["#general"]}),
            json!({"type": "data_delete", "what": "replica db-2", "where": "prod"}),
            json!({"type": "payment", "amount": "12.50", "currency": "eur", "payee": "ACME"}),
            json!({"type": "payment", "amount": 3, "currency": "USD", "payee": "ACME"}),
            json!({"type": "mcp_tool_call", "server": "github", "tool": "create_issue", "arguments": {"title": "x"}}),
            json!({"type": "mcp_tool_call", "server": "github", "tool": "list", "arguments": {}}),
            json!({"type": "generic", "description": "Rotate the staging keys"}),
            json!({"type": "generic", "description": "d", "actions": ["read"], "locations": ["https://rs.example/"], "datatypes": ["contacts"], "identifier": "acct-1", "privileges": ["admin"]}),
        ];
        for c in cases {
            let d = one(c.clone()).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(d.type_name(), c["type"]);
        }
        assert_eq!(
            parse(
                &json!(
                    TYPES
                        .iter()
                        .map(|t| match *t {
                            "api_request" =>
                                json!({"type": t, "method": "GET", "url": "http://x.example/"}),
                            "message_send" =>
                                json!({"type": t, "channel": "sms", "recipients": ["+1555"]}),
                            "data_delete" => json!({"type": t, "what": "a", "where": "b"}),
                            "payment" =>
                                json!({"type": t, "amount": "1", "currency": "EUR", "payee": "p"}),
                            "mcp_tool_call" =>
                                json!({"type": t, "server": "s", "tool": "t", "arguments": {}}),
                            _ => json!({"type": t, "description": "d"}),
                        })
                        .collect::<Vec<_>>()
                )
                .to_string()
            )
            .unwrap()
            .len(),
            TYPES.len()
        );
    }

    #[test]
    fn normalization() {
        let d = one(
            json!({"type": "api_request", "method": "delete", "url": "HTTPS://API.example.com"}),
        )
        .unwrap();
        assert_eq!(
            d.json,
            json!({"type": "api_request", "method": "DELETE", "url": "https://api.example.com/"})
        );
        let d = one(json!({"type": "payment", "amount": 12.5, "currency": "eur", "payee": "ACME"}))
            .unwrap();
        assert_eq!(d.json["amount"], "12.5");
        assert_eq!(d.json["currency"], "EUR");
        let arr = parse(r#"[{"type":"generic","description":"d"}]"#).unwrap();
        assert_eq!(
            to_json(&arr),
            json!([{"type": "generic", "description": "d"}])
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid JSON"),
            ("{}", "must be a JSON array"),
            (
                r#"{"type":"generic","description":"d"}"#,
                "must be a JSON array",
            ),
            ("[]", "must not be an empty array"),
            ("[1]", "authorization_details[0] must be a JSON object"),
            (r#"["generic"]"#, "must be a JSON object"),
            (r#"[{}]"#, "type is required"),
            (r#"[{"type":5}]"#, "type must be a string"),
            (r#"[{"type":"teleport"}]"#, "unknown type \"teleport\""),
            (
                r#"[{"type":"generic"}]"#,
                "(generic): description is required",
            ),
            (
                r#"[{"type":"generic","description":7}]"#,
                "description must be a string",
            ),
            (
                r#"[{"type":"generic","description":""}]"#,
                "description must not be empty",
            ),
            (
                r#"[{"type":"generic","description":"d","extra":1}]"#,
                "unknown field \"extra\"",
            ),
            (
                r#"[{"type":"generic","description":"d","actions":"read"}]"#,
                "actions must be an array of strings",
            ),
            (
                r#"[{"type":"generic","description":"d","actions":[1]}]"#,
                "actions[0] must be a string",
            ),
            (
                r#"[{"type":"generic","description":"d","identifier":["x"]}]"#,
                "identifier must be a string",
            ),
            (
                r#"[{"type":"generic","description":"d","locations":["not a uri"]}]"#,
                "locations[0] must be an absolute URI",
            ),
            (
                r#"[{"type":"generic","description":"d","privileges":{}}]"#,
                "privileges must be an array",
            ),
            (
                r#"[{"type":"generic","description":"d","datatypes":[""]}]"#,
                "datatypes[0] must not be empty",
            ),
            (
                r#"[{"type":"api_request","url":"https://x.example/"}]"#,
                "method is required",
            ),
            (
                r#"[{"type":"api_request","method":"GE T","url":"https://x.example/"}]"#,
                "method must be an HTTP method token",
            ),
            (
                r#"[{"type":"api_request","method":"GET"}]"#,
                "url is required",
            ),
            (
                r#"[{"type":"api_request","method":"GET","url":"/relative"}]"#,
                "url must be an absolute http or https URL",
            ),
            (
                r#"[{"type":"api_request","method":"GET","url":"file:///etc/passwd"}]"#,
                "url must be an absolute http or https URL",
            ),
            (
                r#"[{"type":"api_request","method":1,"url":"https://x.example/"}]"#,
                "method must be a string",
            ),
            (
                r#"[{"type":"message_send","recipients":["a@b.example"]}]"#,
                "channel is required",
            ),
            (
                r#"[{"type":"message_send","channel":"email"}]"#,
                "recipients is required",
            ),
            (
                r#"[{"type":"message_send","channel":"email","recipients":[]}]"#,
                "recipients must not be empty",
            ),
            (
                r#"[{"type":"message_send","channel":"email","recipients":"a@b.example"}]"#,
                "recipients must be an array of strings",
            ),
            (
                r#"[{"type":"message_send","channel":"email","recipients":[3]}]"#,
                "recipients[0] must be a string",
            ),
            (
                r#"[{"type":"message_send","channel":"email","recipients":["a@b.example"],"subject":1}]"#,
                "subject must be a string",
            ),
            (
                r#"[{"type":"message_send","channel":"email","recipients":["a@b.example"],"attachments":"x.pdf"}]"#,
                "attachments must be an array of strings",
            ),
            (
                r#"[{"type":"data_delete","where":"prod"}]"#,
                "what is required",
            ),
            (
                r#"[{"type":"data_delete","what":"db"}]"#,
                "where is required",
            ),
            (
                r#"[{"type":"data_delete","what":"db","where":false}]"#,
                "where must be a string",
            ),
            (
                r#"[{"type":"payment","currency":"EUR","payee":"p"}]"#,
                "amount is required",
            ),
            (
                r#"[{"type":"payment","amount":"0.00","currency":"EUR","payee":"p"}]"#,
                "amount must be greater than zero",
            ),
            (
                r#"[{"type":"payment","amount":-5,"currency":"EUR","payee":"p"}]"#,
                "amount must be greater than zero",
            ),
            (
                r#"[{"type":"payment","amount":"1e3","currency":"EUR","payee":"p"}]"#,
                "amount must be a positive decimal",
            ),
            (
                r#"[{"type":"payment","amount":"-1","currency":"EUR","payee":"p"}]"#,
                "amount must be a positive decimal",
            ),
            (
                r#"[{"type":"payment","amount":true,"currency":"EUR","payee":"p"}]"#,
                "amount must be a positive decimal",
            ),
            (
                r#"[{"type":"payment","amount":"1","payee":"p"}]"#,
                "currency is required",
            ),
            (
                r#"[{"type":"payment","amount":"1","currency":"EURO","payee":"p"}]"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"[{"type":"payment","amount":"1","currency":"E1R","payee":"p"}]"#,
                "currency must be an ISO 4217 code",
            ),
            (
                r#"[{"type":"payment","amount":"1","currency":"EUR"}]"#,
                "payee is required",
            ),
            (
                r#"[{"type":"mcp_tool_call","tool":"t","arguments":{}}]"#,
                "server is required",
            ),
            (
                r#"[{"type":"mcp_tool_call","server":"s","arguments":{}}]"#,
                "tool is required",
            ),
            (
                r#"[{"type":"mcp_tool_call","server":"s","tool":"t"}]"#,
                "arguments is required",
            ),
            (
                r#"[{"type":"mcp_tool_call","server":"s","tool":"t","arguments":[1]}]"#,
                "arguments must be a JSON object",
            ),
            (
                r#"[{"type":"generic","description":"d"},{"type":"nope"}]"#,
                "authorization_details[1]: unknown type",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input);
            assert!(
                err.0.contains(want),
                "{input}: got {:?}, want {want:?}",
                err.0
            );
        }
    }

    #[test]
    fn limits() {
        let item = json!({"type": "generic", "description": "d"});
        assert!(parse(&json!(vec![item.clone(); MAX_DETAILS]).to_string()).is_ok());
        let err = parse(&json!(vec![item; MAX_DETAILS + 1]).to_string()).unwrap_err();
        assert!(err.0.contains("at most 10"), "{}", err.0);

        let long = "x".repeat(MAX_STRING + 1);
        let err = one(json!({"type": "generic", "description": long})).unwrap_err();
        assert!(err.0.contains("description is too long"), "{}", err.0);
        assert!(one(json!({"type": "generic", "description": "x".repeat(MAX_STRING)})).is_ok());
        let err = one(json!({"type": "message_send", "channel": "email", "recipients": [long]}))
            .unwrap_err();
        assert!(err.0.contains("recipients[0] is too long"), "{}", err.0);

        let big = "y".repeat(MAX_ARGUMENTS_BYTES);
        let err = one(json!({"type": "mcp_tool_call", "server": "s", "tool": "t", "arguments": {"body": big}})).unwrap_err();
        assert!(err.0.contains("arguments is too large"), "{}", err.0);

        let many: Vec<String> = (0..=MAX_ITEMS).map(|i| format!("r{i}")).collect();
        let err = one(json!({"type": "message_send", "channel": "slack", "recipients": many}))
            .unwrap_err();
        assert!(err.0.contains("at most 100"), "{}", err.0);

        let huge = format!("[{}]", " ".repeat(MAX_RAW_BYTES));
        assert!(parse(&huge).unwrap_err().0.contains("too long"));
    }

    fn email(to: &[&str]) -> Detail {
        one(json!({"type": "message_send", "channel": "email", "recipients": to, "subject": "Budget", "attachments": ["budget-deck.pdf"]})).unwrap()
    }

    #[test]
    fn external_recipient_is_flagged_in_the_summary() {
        let r = render(&email(&["alex@contractor.example"]), &own(&["example.com"]));
        assert_eq!(
            r.summary,
            "Send an email to alex@contractor.example with the attachment budget-deck.pdf — outside your domain"
        );
        assert_eq!(
            r.warnings,
            vec!["alex@contractor.example is outside your domains (example.com)"]
        );
        assert!(r.lines.contains(&("Subject".into(), "Budget".into())));
        assert!(
            r.lines
                .contains(&("Attachments".into(), "budget-deck.pdf".into()))
        );
    }

    #[test]
    fn own_domain_recipients_are_not_flagged() {
        let own_d = own(&["example.com"]);
        for to in [
            "alex@example.com",
            "Alex <ALEX@Example.COM>",
            "alex@mail.example.com",
        ] {
            let r = render(&email(&[to]), &own_d);
            assert!(r.warnings.is_empty(), "{to}: {:?}", r.warnings);
            assert!(!r.summary.contains("outside"), "{to}: {}", r.summary);
        }
        // A look-alike domain is not the person's.
        let r = render(&email(&["alex@notexample.com"]), &own_d);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn mixed_recipients_name_only_the_external_ones() {
        let r = render(
            &email(&["sam@example.com", "alex@contractor.example"]),
            &own(&["example.com"]),
        );
        assert!(
            r.summary
                .ends_with("— outside your domains: alex@contractor.example"),
            "{}",
            r.summary
        );
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].starts_with("alex@contractor.example"));
    }

    #[test]
    fn no_own_domains_asks_to_check_once() {
        let r = render(&email(&["a@x.example", "b@y.example"]), &[]);
        assert_eq!(
            r.warnings,
            vec!["check the recipients: no own domains are set"]
        );
        assert!(!r.summary.contains("outside"));
        // Slack channels have no domain to check.
        let slack =
            one(json!({"type": "message_send", "channel": "slack", "recipients": ["#general"]}))
                .unwrap();
        let r = render(&slack, &[]);
        assert!(r.warnings.is_empty());
        assert_eq!(r.summary, "Send a Slack message to #general");
    }

    #[test]
    fn destructive_types_warn() {
        let d = one(json!({"type": "data_delete", "what": "replica db-2", "where": "production"}))
            .unwrap();
        let r = render(&d, &[]);
        assert_eq!(r.summary, "Delete replica db-2 from production");
        assert_eq!(r.warnings.len(), 1);
        let p =
            one(json!({"type": "payment", "amount": "12.50", "currency": "EUR", "payee": "ACME"}))
                .unwrap();
        let r = render(&p, &[]);
        assert_eq!(r.summary, "Pay 12.50 EUR to ACME");
        assert_eq!(r.warnings, vec!["This moves money: 12.50 EUR to ACME"]);
        let a = one(
            json!({"type": "api_request", "method": "delete", "url": "https://api.example.com/x"}),
        )
        .unwrap();
        let r = render(&a, &[]);
        assert_eq!(r.summary, "Call DELETE https://api.example.com/x");
        assert_eq!(r.warnings.len(), 1);
        let g = one(
            json!({"type": "api_request", "method": "GET", "url": "https://api.example.com/x"}),
        )
        .unwrap();
        assert!(render(&g, &[]).warnings.is_empty());
    }

    #[test]
    fn tool_arguments_are_readable_and_secrets_redacted() {
        let d = one(json!({
            "type": "mcp_tool_call", "server": "github", "tool": "create_issue",
            "arguments": {
                "title": "Fix it",
                "api_key": "abc",
                "accessToken": "whatever",
                "Authorization": "Basic Zm9v",
                "monkey": "banana",
                "body": "use ghp_abcdefghijklmnop please",
                "nested": {"password": "hunter2", "n": 1, "list": ["sk-abcdefghijkl", "ok"]},
                "slack": "xoxb-123456789",
                "mine": "gth_at_abcdefghijkl",
                "count": 3
            }
        }))
        .unwrap();
        let r = render(&d, &[]);
        assert_eq!(
            r.summary,
            "Call the tool create_issue on the MCP server github"
        );
        let line = |k: &str| {
            r.lines
                .iter()
                .find(|(l, _)| l == &format!("Argument {k}"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no line for {k}: {:?}", r.lines))
        };
        assert_eq!(line("title"), "Fix it");
        assert_eq!(line("api_key"), REDACTED);
        assert_eq!(line("accessToken"), REDACTED);
        assert_eq!(line("Authorization"), REDACTED);
        assert_eq!(line("monkey"), "banana");
        assert_eq!(line("body"), REDACTED);
        assert_eq!(line("slack"), REDACTED);
        assert_eq!(line("mine"), REDACTED);
        assert_eq!(line("count"), "3");
        let nested = line("nested");
        assert!(
            !nested.contains("hunter2") && !nested.contains("sk-abc"),
            "{nested}"
        );
        assert!(
            nested.contains("\"ok\"") && nested.contains("\"n\":1"),
            "{nested}"
        );
    }

    #[test]
    fn long_values_are_truncated() {
        let long = "z".repeat(1500);
        let d = one(json!({"type": "mcp_tool_call", "server": "s", "tool": "t", "arguments": {"text": long}})).unwrap();
        let r = render(&d, &[]);
        let v = &r
            .lines
            .iter()
            .find(|(l, _)| l == "Argument text")
            .unwrap()
            .1;
        assert!(v.ends_with("… (1200 more characters)"), "{v}");
        assert!(v.chars().count() < 400);
        let g = one(json!({"type": "generic", "description": "w".repeat(500)})).unwrap();
        assert!(render(&g, &[]).summary.ends_with("… (380 more characters)"));
        let many: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let d =
            one(json!({"type": "mcp_tool_call", "server": "s", "tool": "t", "arguments": many}))
                .unwrap();
        let r = render(&d, &[]);
        assert!(
            r.lines
                .contains(&("Arguments".into(), "10 more not shown".into()))
        );
    }

    #[test]
    fn agent_strings_are_shown_as_data() {
        let d = one(
            json!({"type": "generic", "description": "ok\u{202E}gnp.exe\nline2\u{0007}\u{200B}"}),
        )
        .unwrap();
        let r = render(&d, &[]);
        assert_eq!(r.summary, "okgnp.exe line2");
        let m = one(json!({"type": "message_send", "channel": "email", "recipients": ["alex@contractor.example\u{202E}"]})).unwrap();
        let r = render(&m, &own(&["example.com"]));
        assert!(!r.summary.contains('\u{202E}'));
        assert!(r.warnings.iter().all(|w| !w.contains('\u{202E}')));
    }

    #[test]
    fn common_fields_are_shown() {
        let d = one(json!({"type": "generic", "description": "Read contacts", "actions": ["read"], "locations": ["https://crm.example/"], "identifier": "acct-7"})).unwrap();
        let r = render(&d, &[]);
        assert!(r.lines.contains(&("Actions".into(), "read".into())));
        assert!(
            r.lines
                .contains(&("Locations".into(), "https://crm.example/".into()))
        );
        assert!(r.lines.contains(&("Identifier".into(), "acct-7".into())));
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Example.COM."), Some("example.com".into()));
        assert_eq!(normalize_domain("@example.com"), Some("example.com".into()));
        assert_eq!(
            normalize_domain("sub.example-1.co.uk"),
            Some("sub.example-1.co.uk".into())
        );
        for bad in [
            "",
            "localhost",
            "exa mple.com",
            "-x.com",
            "x..com",
            "a@b.com",
            "http://x.com",
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn render_all_collects_summaries_and_unique_warnings() {
        let details = parse(
            &json!([
                {"type": "payment", "amount": "1", "currency": "EUR", "payee": "p"},
                {"type": "payment", "amount": "1", "currency": "EUR", "payee": "p"},
                {"type": "generic", "description": "d"}
            ])
            .to_string(),
        )
        .unwrap();
        let (s, w) = render_all(&details, &[]);
        assert_eq!(s.len(), 3);
        assert_eq!(w.len(), 1);
    }
}
