//! The MCP gateway's decisions and records: names (resource URIs, scopes, policy resources), the
//! canonical hashes of call arguments and tool definitions, tool kinds from annotations and what
//! the policy's answer means for a call, the readable and redacted view of arguments shown to the
//! person, and the stored servers and tools (add/remove, what each upstream lists, pinning).
//!
//! Names, as shown at consent and in the RFC 9728 metadata:
//! - the resource (token audience) of a server is `{issuer}/mcp/{name}`;
//! - `mcp:{name}` covers every tool of the server plus its resources and prompts;
//!   `mcp:{name}:{tool}` covers that one tool only;
//! - the policy sees a `tools/call` as the action `mcp_tool_call` on
//!   `{issuer}/mcp/{name}/tools/{tool}?args=sha256:{hex}`; a remembered "any arguments" is the
//!   glob `{issuer}/mcp/{name}/tools/{tool}?args=*`.
//!
//! A tool is offered and callable only while its listed definition is the one the person
//! approved (pinned). New and changed tools are held until approved.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Authority;
use crate::approvals::ActionRequest;
use crate::audit::{EventKind, NewEvent, Outcome};
use crate::gateway::summary::{REDACTED, is_secret_key};
use crate::gateway::{Presented, Refusal, Verdict};
use crate::policy::{DenyReason, PAUSED_MESSAGE, PolicyDecision};
use crate::secret::random_id;
use crate::store::mcp::{self as rows, EnvValue, HTTP, STDIO};
use crate::store::{Store, StoreError, WriteTx};

pub use crate::store::mcp::{McpServerRow, McpToolRow, NewMcpServer, ToolStatus};

/// The policy action type of a tool call (also the RFC 9396 detail type shown to the person).
pub const MCP_TOOL_CALL: &str = "mcp_tool_call";

/// The warning shown when a tool the server marks destructive asks.
pub const DESTRUCTIVE_WARNING: &str =
    "the server marks this tool destructive: it may delete or overwrite data";

/// What an agent gets when it calls a held (new or changed) tool.
pub const HELD_MESSAGE: &str = "held: its definition changed since you approved it; re-approve it in \
     Gatehouse (MCP servers view, or `gatehouse mcp approve NAME TOOL`)";

/// What an agent gets when it calls a held tool, by why it is held: [`HELD_MESSAGE`] for a changed
/// definition, and the same advice for a tool the person has not approved yet.
pub fn held_message(status: ToolStatus) -> &'static str {
    match status {
        ToolStatus::New => {
            "held: this tool is new since you approved this server; approve it in Gatehouse \
             (MCP servers view, or `gatehouse mcp approve NAME TOOL`)"
        }
        _ => HELD_MESSAGE,
    }
}

/// The longest argument value shown to the person, in characters (an ellipsis marks a cut).
pub const VALUE_CHARS: usize = 80;
/// The most lines of an argument summary.
pub const SUMMARY_LINES: usize = 12;
/// The most items of an array, or keys of an object, kept in the redacted arguments.
const MAX_ITEMS: usize = 50;

const ELLIPSIS: char = '…';

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("an MCP server named {0} already exists")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "no vault connection is named {0}; add it first with `gatehouse connections add` (or in the Connections view)"
    )]
    UnknownConnection(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for McpError {
    fn from(e: rusqlite::Error) -> Self {
        McpError::Store(StoreError::from(e))
    }
}

// ---- names -------------------------------------------------------------------------------------

/// The resource URI (token audience) of a server.
pub fn resource_uri(issuer: &str, server: &str) -> String {
    format!("{issuer}/mcp/{server}")
}

/// Where the RFC 9728 metadata of a server is served.
pub fn metadata_uri(issuer: &str, server: &str) -> String {
    format!("{issuer}/.well-known/oauth-protected-resource/mcp/{server}")
}

/// The scope covering every tool, resource and prompt of a server.
pub fn server_scope(server: &str) -> String {
    format!("mcp:{server}")
}

/// The scope covering one tool of a server.
pub fn tool_scope(server: &str, tool: &str) -> String {
    format!("mcp:{server}:{tool}")
}

/// Whether `scopes` cover calling (and listing) `tool`: `mcp:{server}` or `mcp:{server}:{tool}`.
pub fn tool_allowed(scopes: &[String], server: &str, tool: &str) -> bool {
    let (all, one) = (server_scope(server), tool_scope(server, tool));
    scopes.iter().any(|s| *s == all || *s == one)
}

/// Whether `scopes` cover the server's resources and prompts: only `mcp:{server}` does.
pub fn server_allowed(scopes: &[String], server: &str) -> bool {
    let all = server_scope(server);
    scopes.contains(&all)
}

/// Checks a live token for a server's endpoint: its audience must be the server's resource, and
/// it must carry `mcp:{server}` or some `mcp:{server}:{tool}`. `None`: no token was presented.
pub fn check_token(
    token: Option<Presented<'_>>,
    issuer: &str,
    server: &str,
) -> Result<(), Refusal> {
    let Some(t) = token else {
        return Err(Refusal::NoToken);
    };
    let resource = resource_uri(issuer, server);
    if !t.audience.contains(&resource) {
        return Err(Refusal::InvalidToken(format!(
            "the token's audience is not {resource}: request it with resource={resource}"
        )));
    }
    let all = server_scope(server);
    let tool_prefix = format!("{all}:");
    let any = t.scopes.iter().any(|s| {
        *s == all
            || s.strip_prefix(&tool_prefix)
                .is_some_and(|tool| !tool.is_empty())
    });
    if !any {
        return Err(Refusal::InsufficientScope { scope: all });
    }
    Ok(())
}

/// `[a-z0-9-]{1,40}`, like a vault connection's name.
pub fn validate_server_name(name: &str) -> Result<(), McpError> {
    let ok = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(McpError::Invalid(format!(
            "the name {name:?} must be 1 to 40 characters of a-z, 0-9 and -"
        )))
    }
}

/// A tool name as it appears in a policy resource: bytes outside `A-Za-z0-9-._~` are
/// percent-encoded, so a `*` or `?` in a (non-conforming) tool name can never act as a glob or
/// end the path.
fn encode_tool(tool: &str) -> String {
    let mut out = String::with_capacity(tool.len());
    for b in tool.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The policy resource of a tool as a whole: `{issuer}/mcp/{server}/tools/{tool}`.
pub fn tool_resource(issuer: &str, server: &str, tool: &str) -> String {
    format!("{issuer}/mcp/{server}/tools/{}", encode_tool(tool))
}

/// The policy resource of one call: the tool's resource with `?args={args_hash}`.
pub fn call_resource(issuer: &str, server: &str, tool: &str, args_hash: &str) -> String {
    format!("{}?args={args_hash}", tool_resource(issuer, server, tool))
}

/// The glob a remembered "any arguments" decision covers: every call of the tool.
pub fn any_arguments_pattern(issuer: &str, server: &str, tool: &str) -> String {
    format!("{}?args=*", tool_resource(issuer, server, tool))
}

/// The server named by a consent's resource `{issuer}/mcp/{name}`, if it is one. Without an
/// issuer, any absolute URI ending in `/mcp/{name}` counts.
fn server_of_resource<'a>(issuer: Option<&str>, resource: &'a str) -> Option<&'a str> {
    let name = match issuer {
        Some(iss) => resource.strip_prefix(iss)?.strip_prefix("/mcp/")?,
        None => resource.rsplit_once("/mcp/")?.1,
    };
    validate_server_name(name).ok().map(|()| name)
}

// ---- canonical JSON and hashes -----------------------------------------------------------------

/// JSON with object keys sorted (by their UTF-8 bytes) at every depth and no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn sha256_tagged(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// `sha256:<hex>` of a call's canonical arguments; missing arguments (`null`) hash as `{}`.
pub fn args_hash(arguments: &Value) -> String {
    match arguments {
        Value::Null => sha256_tagged("{}"),
        v => sha256_tagged(&canonical_json(v)),
    }
}

/// The fields of a tool definition its hash covers; any other field may change freely.
const DEFINITION_FIELDS: [&str; 6] = [
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// `sha256:<hex>` of the canonical JSON of the tool's name, title, description, input and output
/// schemas and annotations (absent fields are `null`).
pub fn definition_hash(tool: &Value) -> String {
    let covered: serde_json::Map<String, Value> = DEFINITION_FIELDS
        .iter()
        .map(|f| {
            (
                (*f).to_owned(),
                tool.get(*f).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    sha256_tagged(&canonical_json(&Value::Object(covered)))
}

// ---- kinds and the policy ----------------------------------------------------------------------

/// What a tool's annotations say it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    ReadOnly,
    Destructive,
    Other,
}

impl ToolKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::ReadOnly => "read_only",
            ToolKind::Destructive => "destructive",
            ToolKind::Other => "other",
        }
    }
}

/// `readOnlyHint: true` → read-only; else `destructiveHint: true` → destructive; else other.
pub fn tool_kind(annotations: Option<&Value>) -> ToolKind {
    let hint = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_bool) == Some(true);
    if hint("readOnlyHint") {
        ToolKind::ReadOnly
    } else if hint("destructiveHint") {
        ToolKind::Destructive
    } else {
        ToolKind::Other
    }
}

/// Applies the MCP defaults to the policy's answer for a call: a rule wins and a pause denies;
/// with no rule, read-only tools go through, destructive ones ask with a warning, others ask.
pub fn apply_policy(decision: &PolicyDecision, kind: ToolKind) -> Verdict {
    match decision {
        PolicyDecision::Deny {
            reason: DenyReason::Paused,
        } => Verdict::Refuse(Refusal::Denied(PAUSED_MESSAGE.into())),
        PolicyDecision::Deny {
            reason: DenyReason::Rule { rule_id },
        } => Verdict::Refuse(Refusal::Denied(format!(
            "a policy rule denies this call (rule {rule_id})"
        ))),
        PolicyDecision::Allow { .. } => Verdict::Forward,
        PolicyDecision::Ask { rules } if rules.is_empty() && kind == ToolKind::ReadOnly => {
            Verdict::Forward
        }
        PolicyDecision::Ask { .. } => Verdict::Ask {
            warnings: (kind == ToolKind::Destructive)
                .then(|| DESTRUCTIVE_WARNING.to_owned())
                .into_iter()
                .collect(),
        },
    }
}

// ---- what the person sees of the arguments ------------------------------------------------------

/// Whether a string looks like a credential by its shape: a known token prefix, a bearer
/// header, a PEM block, or a JWT.
pub fn looks_like_credential(s: &str) -> bool {
    let t = s.trim_start();
    let prefixed = [
        "sk-",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "github_pat_",
        "AKIA",
        "-----BEGIN",
    ]
    .iter()
    .any(|p| t.starts_with(p));
    // Slack tokens: xoxb-, xoxp-, xoxa-, ...
    let slack = t.starts_with("xox") && t.as_bytes().get(4) == Some(&b'-');
    let bearer = t
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
    prefixed || slack || bearer || looks_like_jwt(t)
}

fn looks_like_jwt(t: &str) -> bool {
    let t = t.trim_end();
    let parts: Vec<&str> = t.split('.').collect();
    t.starts_with("eyJ")
        && parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// `s` without control characters (each becomes a space), cut to `max` characters with an
/// ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push(ELLIPSIS);
    }
    out
}

/// The arguments as the person sees and the approval records them: the value of every
/// secret-looking key and every credential-looking string becomes `"[redacted]"`, strings are cut
/// to [`VALUE_CHARS`], and arrays and objects keep at most 50 items (a last string says how many
/// more there were).
pub fn redacted_args(arguments: &Value) -> Value {
    match arguments {
        Value::String(s) if looks_like_credential(s) => Value::String(REDACTED.into()),
        Value::String(s) => Value::String(cut(s, VALUE_CHARS)),
        Value::Array(items) => {
            let mut out: Vec<Value> = items.iter().take(MAX_ITEMS).map(redacted_args).collect();
            if items.len() > MAX_ITEMS {
                out.push(Value::String(format!(
                    "{ELLIPSIS} {} more",
                    items.len() - MAX_ITEMS
                )));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map.iter().take(MAX_ITEMS) {
                let v = if is_secret_key(k) {
                    Value::String(REDACTED.into())
                } else {
                    redacted_args(v)
                };
                out.insert(k.clone(), v);
            }
            if map.len() > MAX_ITEMS {
                out.insert(
                    ELLIPSIS.to_string(),
                    Value::String(format!("{} more", map.len() - MAX_ITEMS)),
                );
            }
            Value::Object(out)
        }
        scalar => scalar.clone(),
    }
}

/// One `key: value` line per top-level argument (strings as they are, anything else as compact
/// JSON), redacted as in [`redacted_args`], each value cut to [`VALUE_CHARS`]; at most
/// [`SUMMARY_LINES`] lines (the last then says how many more there are). Arguments that are not
/// an object are one `arguments: ...` line; none at all are no lines.
pub fn args_summary(arguments: &Value) -> Vec<String> {
    let show = |v: &Value| match v {
        Value::String(s) => cut(s, VALUE_CHARS),
        other => cut(&canonical_json(other), VALUE_CHARS),
    };
    let map = match arguments {
        Value::Null => return Vec::new(),
        Value::Object(map) => map,
        other => return vec![format!("arguments: {}", show(&redacted_args(other)))],
    };
    let mut lines = Vec::new();
    for (i, (k, v)) in map.iter().enumerate() {
        if i == SUMMARY_LINES - 1 && map.len() > SUMMARY_LINES {
            lines.push(format!("{ELLIPSIS} and {} more", map.len() - i));
            break;
        }
        let v = if is_secret_key(k) {
            REDACTED.to_owned()
        } else {
            show(&redacted_args(v))
        };
        lines.push(format!("{}: {v}", cut(k, 40)));
    }
    lines
}

// ---- servers -----------------------------------------------------------------------------------

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn valid_env_key(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// An absolute http(s) URL with a host, no credentials and no fragment.
fn validate_url(raw: &str) -> Result<(), McpError> {
    let bad = |why: &str| McpError::Invalid(format!("the URL {raw:?} {why}"));
    let url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials (put them in a vault connection: --connection)",
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(())
}

/// Checks a new server's fields (everything but whether its connections exist).
fn validate_new(s: &NewMcpServer) -> Result<(), McpError> {
    validate_server_name(&s.name)?;
    let invalid = |m: String| Err(McpError::Invalid(m));
    let secret_hint = "looks like a secret: keep it in the vault (`gatehouse connections add`) and pass it \
                       with --secret-env KEY=CONNECTION";
    match s.transport.as_str() {
        STDIO => {
            if s.command.first().is_none_or(|c| c.trim().is_empty()) {
                return invalid("a stdio server needs a command to run".into());
            }
            if s.url.is_some() || s.connection.is_some() {
                return invalid("a stdio server has no URL or connection".into());
            }
            for arg in &s.command {
                if arg.contains('\0') {
                    return invalid("the command must not contain NUL characters".into());
                }
                if looks_like_credential(arg) {
                    return invalid(format!("an argument of the command {secret_hint}"));
                }
            }
            for (k, v) in &s.env {
                if !valid_env_key(k) {
                    return invalid(format!(
                        "the environment variable name {k:?} must match [A-Za-z_][A-Za-z0-9_]*"
                    ));
                }
                if let EnvValue::Value(v) = v {
                    if v.contains('\0') {
                        return invalid(format!("the value of {k} must not contain NUL"));
                    }
                    if looks_like_credential(v) {
                        return invalid(format!("the value of {k} {secret_hint}"));
                    }
                }
            }
        }
        HTTP => {
            let Some(url) = &s.url else {
                return invalid("an http server needs a URL".into());
            };
            validate_url(url)?;
            if !s.command.is_empty() || !s.env.is_empty() {
                return invalid("an http server has no command or environment".into());
            }
        }
        other => {
            return invalid(format!(
                "the transport {other:?} must be {STDIO:?} or {HTTP:?}"
            ));
        }
    }
    Ok(())
}

/// Every vault connection a server refers to.
fn connections_of(s: &NewMcpServer) -> BTreeSet<&str> {
    s.env
        .values()
        .filter_map(|v| match v {
            EnvValue::Connection(c) => Some(c.as_str()),
            EnvValue::Value(_) => None,
        })
        .chain(s.connection.as_deref())
        .collect()
}

/// Adds a server and audits it (`mcp.server_added`). The name must be free, a stdio server needs
/// a command, an http server an absolute http(s) URL, environment names must be valid, and every
/// vault connection referred to must exist. `by` is who added it (`cli`, `desktop`).
pub async fn add_server(
    store: &Store,
    new: NewMcpServer,
    by: &str,
) -> Result<McpServerRow, McpError> {
    validate_new(&new)?;
    let by = by.to_owned();
    store
        .write(move |tx| -> Result<McpServerRow, McpError> {
            let now = tx.now();
            if rows::get_server(tx.conn(), &new.name)?.is_some() {
                return Err(McpError::Exists(new.name.clone()));
            }
            for c in connections_of(&new) {
                if crate::store::connections::get(tx.conn(), c)?.is_none() {
                    return Err(McpError::UnknownConnection(c.to_owned()));
                }
            }
            rows::insert_server(tx.conn(), &new, now)?;
            let row = rows::get_server(tx.conn(), &new.name)?
                .ok_or_else(|| McpError::NotFound(new.name.clone()))?;
            // Values are not secret (checked above) but the audit names only what is needed.
            let env: BTreeMap<&str, Value> = row
                .env
                .iter()
                .map(|(k, v)| {
                    let shown = match v {
                        EnvValue::Value(_) => serde_json::json!("value"),
                        EnvValue::Connection(c) => serde_json::json!({ "connection": c }),
                    };
                    (k.as_str(), shown)
                })
                .collect();
            tx.append(NewEvent::new(
                EventKind::McpServerAdded,
                Outcome::Ok,
                None,
                serde_json::json!({
                    "server": row.name,
                    "transport": row.transport,
                    "command": row.command,
                    "env": env,
                    "url": row.url,
                    "connection": row.connection,
                    "by": by,
                }),
            ))?;
            Ok(row)
        })
        .await
}

/// Removes a server and its tools, audited (`mcp.server_removed`); returns the removed row.
pub async fn remove_server(store: &Store, name: &str, by: &str) -> Result<McpServerRow, McpError> {
    let (name, by) = (name.to_owned(), by.to_owned());
    store
        .write(move |tx| -> Result<McpServerRow, McpError> {
            let Some(row) = rows::get_server(tx.conn(), &name)? else {
                return Err(not_found(&name));
            };
            let tools = rows::list_tools(tx.conn(), &name)?.len();
            rows::delete_server(tx.conn(), &name)?;
            tx.append(NewEvent::new(
                EventKind::McpServerRemoved,
                Outcome::Ok,
                None,
                serde_json::json!({
                    "server": row.name,
                    "transport": row.transport,
                    "tools": tools,
                    "by": by,
                }),
            ))?;
            Ok(row)
        })
        .await
}

fn not_found(name: &str) -> McpError {
    McpError::NotFound(format!("no MCP server is named {name}"))
}

/// Every server, by name.
pub async fn list_servers(store: &Store) -> Result<Vec<McpServerRow>, StoreError> {
    store
        .read(|c| rows::list_servers(c).map_err(StoreError::from))
        .await
}

pub async fn get_server(store: &Store, name: &str) -> Result<Option<McpServerRow>, StoreError> {
    let name = name.to_owned();
    store
        .read(move |c| rows::get_server(c, &name).map_err(StoreError::from))
        .await
}

/// Every tool a server has listed (removed ones too), by name.
pub async fn list_tools(store: &Store, server: &str) -> Result<Vec<McpToolRow>, McpError> {
    let server = server.to_owned();
    store
        .read(move |c| -> Result<Vec<McpToolRow>, McpError> {
            if rows::get_server(c, &server)?.is_none() {
                return Err(not_found(&server));
            }
            Ok(rows::list_tools(c, &server)?)
        })
        .await
}

/// How many of a server's tools are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ToolCounts {
    pub pinned: u32,
    pub changed: u32,
    pub new: u32,
    pub removed: u32,
}

impl ToolCounts {
    pub fn of(tools: &[McpToolRow]) -> Self {
        let mut c = ToolCounts::default();
        for t in tools {
            match t.status() {
                ToolStatus::Pinned => c.pinned += 1,
                ToolStatus::Changed => c.changed += 1,
                ToolStatus::New => c.new += 1,
                ToolStatus::Removed => c.removed += 1,
            }
        }
        c
    }
}

/// A server with its tools' counts (for `gatehouse mcp list` and the desktop's list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct McpServerOverview {
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub server: McpServerRow,
    pub tools: ToolCounts,
}

/// Every server with its tools' counts, read in one pass.
pub async fn server_overviews(store: &Store) -> Result<Vec<McpServerOverview>, StoreError> {
    store
        .read(|c| -> Result<Vec<McpServerOverview>, StoreError> {
            let mut out = Vec::new();
            for server in rows::list_servers(c)? {
                let tools = ToolCounts::of(&rows::list_tools(c, &server.name)?);
                out.push(McpServerOverview { server, tools });
            }
            Ok(out)
        })
        .await
}

// ---- tools: listings and pins ------------------------------------------------------------------

/// How a tool's listing differs from the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChangeKind {
    /// Listed for the first time.
    Added,
    /// Listed with another definition than last time.
    Updated,
    /// Listed again after it was missing (possibly with another definition).
    Returned,
    /// No longer listed.
    Removed,
}

/// One difference [`record_tools`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolChange {
    pub tool: String,
    pub change: ToolChangeKind,
    /// The definition hash listed before (`None` when first listed).
    pub old_hash: Option<String>,
    /// The definition hash listed now (`None` when removed).
    pub new_hash: Option<String>,
    /// The tool's status now.
    pub status: ToolStatus,
}

/// Records what the upstream lists now: each tool's definition and hash (present, seen now); a
/// tool it no longer lists is marked removed. A pinned tool whose definition now differs from the
/// approved one, and did not a listing ago, is audited (`mcp.tool_changed`) once. Tools without a
/// string `name` are skipped. Returns what differs from the previous listing.
pub async fn record_tools(
    store: &Store,
    server: &str,
    tools: Vec<Value>,
) -> Result<Vec<ToolChange>, McpError> {
    let server = server.to_owned();
    store
        .write(move |tx| record_tools_in(tx, &server, &tools))
        .await
}

/// [`record_tools`] inside the caller's transaction.
pub fn record_tools_in(
    tx: &mut WriteTx<'_>,
    server: &str,
    tools: &[Value],
) -> Result<Vec<ToolChange>, McpError> {
    let now = tx.now();
    let Some(row) = rows::get_server(tx.conn(), server)? else {
        return Err(not_found(server));
    };
    let before: BTreeMap<String, McpToolRow> = rows::list_tools(tx.conn(), server)?
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    // The last definition of a name listed twice wins.
    let mut listed: BTreeMap<&str, &Value> = BTreeMap::new();
    for t in tools {
        match t.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => {
                listed.insert(name, t);
            }
            _ => tracing::warn!(
                server,
                "an MCP server listed a tool without a name; skipped"
            ),
        }
    }
    let mut changes = Vec::new();
    for (name, def) in &listed {
        let hash = definition_hash(def);
        let old = before.get(*name);
        rows::upsert_seen_tool(tx.conn(), row.id, name, def, &hash, now)?;
        let change = match old {
            None => Some(ToolChangeKind::Added),
            Some(o) if !o.present => Some(ToolChangeKind::Returned),
            Some(o) if o.hash != hash => Some(ToolChangeKind::Updated),
            Some(_) => None,
        };
        let Some(change) = change else { continue };
        let pinned = old.and_then(|o| o.pinned_hash.clone());
        let status = match &pinned {
            None => ToolStatus::New,
            Some(p) if *p == hash => ToolStatus::Pinned,
            Some(_) => ToolStatus::Changed,
        };
        let old_hash = old.map(|o| o.hash.clone());
        if status == ToolStatus::Changed && old_hash.as_deref() != Some(hash.as_str()) {
            tx.append(NewEvent::new(
                EventKind::McpToolChanged,
                Outcome::Ok,
                None,
                serde_json::json!({
                    "server": server,
                    "tool": name,
                    "old_hash": old_hash,
                    "new_hash": hash,
                    "pinned_hash": pinned,
                }),
            ))?;
        }
        changes.push(ToolChange {
            tool: (*name).to_owned(),
            change,
            old_hash,
            new_hash: Some(hash),
            status,
        });
    }
    for (name, old) in &before {
        if old.present
            && !listed.contains_key(name.as_str())
            && rows::mark_absent(tx.conn(), row.id, name)?
        {
            changes.push(ToolChange {
                tool: name.clone(),
                change: ToolChangeKind::Removed,
                old_hash: Some(old.hash.clone()),
                new_hash: None,
                status: ToolStatus::Removed,
            });
        }
    }
    Ok(changes)
}

/// Pins one tool's current definition and audits it (`mcp.tool_approved`).
fn pin_in(
    tx: &mut WriteTx<'_>,
    server_id: i64,
    tool: &McpToolRow,
    by: &str,
    client_id: Option<&str>,
) -> Result<(), StoreError> {
    rows::pin(tx.conn(), server_id, &tool.name, by, tx.now())?;
    tx.append(NewEvent::new(
        EventKind::McpToolApproved,
        Outcome::Ok,
        client_id,
        serde_json::json!({
            "server": tool.server,
            "tool": tool.name,
            "hash": tool.hash,
            "old_hash": tool.pinned_hash,
            "by": by,
        }),
    ))?;
    Ok(())
}

/// Pins the current definition of `tool` (or, with `None`, of every new or changed tool) of a
/// server, audited per tool (`mcp.tool_approved`). Returns each tool it pinned as it was just
/// before: its status says why it was held, `pinned_definition` is what was approved before (if
/// anything) and `definition` what is approved now. A tool already pinned is left alone (and not
/// returned); a tool no longer listed cannot be approved.
pub async fn approve_tool(
    store: &Store,
    server: &str,
    tool: Option<&str>,
    by: &str,
) -> Result<Vec<McpToolRow>, McpError> {
    let (server, tool, by) = (server.to_owned(), tool.map(str::to_owned), by.to_owned());
    store
        .write(move |tx| -> Result<Vec<McpToolRow>, McpError> {
            let Some(row) = rows::get_server(tx.conn(), &server)? else {
                return Err(not_found(&server));
            };
            let held = |t: &McpToolRow| matches!(t.status(), ToolStatus::New | ToolStatus::Changed);
            let tools = match &tool {
                Some(name) => {
                    let Some(t) = rows::get_tool(tx.conn(), &server, name)? else {
                        return Err(McpError::NotFound(format!(
                            "the MCP server {server} has not listed a tool named {name}"
                        )));
                    };
                    if t.status() == ToolStatus::Removed {
                        return Err(McpError::Invalid(format!(
                            "the MCP server {server} no longer lists the tool {name}"
                        )));
                    }
                    vec![t].into_iter().filter(held).collect::<Vec<_>>()
                }
                None => rows::list_tools(tx.conn(), &server)?
                    .into_iter()
                    .filter(held)
                    .collect(),
            };
            for t in &tools {
                pin_in(tx, row.id, t, &by, None)?;
            }
            Ok(tools)
        })
        .await
}

/// Called when a consent is approved, in its transaction: for each of its resources that is an
/// MCP server's (`{issuer}/mcp/{name}`), pins every new tool of that server (by `consent`).
/// Changed tools stay held: a change needs an explicit re-approval where it is shown.
pub(crate) fn pin_on_consent(
    tx: &mut WriteTx<'_>,
    issuer: Option<&str>,
    resources: &[String],
    client_id: &str,
) -> Result<(), StoreError> {
    for resource in resources {
        let Some(name) = server_of_resource(issuer, resource) else {
            continue;
        };
        let Some(server) = rows::get_server(tx.conn(), name)? else {
            continue;
        };
        for t in rows::list_tools(tx.conn(), name)? {
            if t.status() == ToolStatus::New {
                pin_in(tx, server.id, &t, "consent", Some(client_id))?;
            }
        }
    }
    Ok(())
}

// ---- calls -------------------------------------------------------------------------------------

/// What one read of the database says about a call to a server that exists.
#[derive(Debug, Clone)]
pub struct McpCallLookup {
    pub server: McpServerRow,
    /// The tool's row; `None` when the server never listed it.
    pub tool: Option<McpToolRow>,
    /// The exact call resource the policy was asked about.
    pub resource: String,
    /// The policy's answer for `mcp_tool_call` on `resource`.
    pub decision: PolicyDecision,
}

/// Reads a server's row and the tool's, and evaluates the policy for this exact call, in ONE read
/// (like [`crate::gateway::lookup_call`]). `None` when there is no such server.
pub async fn lookup_call(
    authority: &Authority,
    client_id: &str,
    server: &str,
    tool: &str,
    args_hash: &str,
) -> Result<Option<McpCallLookup>, StoreError> {
    let now = authority.clock().now();
    let session_id = authority.session_id().to_owned();
    let resource = call_resource(authority.issuer(), server, tool, args_hash);
    let (client_id, server, tool) = (client_id.to_owned(), server.to_owned(), tool.to_owned());
    authority
        .store()
        .read(move |c| -> Result<Option<McpCallLookup>, StoreError> {
            let Some(row) = rows::get_server(c, &server)? else {
                return Ok(None);
            };
            let tool_row = rows::get_tool(c, &server, &tool)?;
            let request = crate::policy::PolicyRequest {
                client_id,
                actions: vec![MCP_TOOL_CALL.into()],
                resources: vec![resource.clone()],
            };
            let decision = crate::policy::evaluate(c, &request, now, &session_id)?;
            Ok(Some(McpCallLookup {
                server: row,
                tool: tool_row,
                resource,
                decision,
            }))
        })
        .await
}

/// The action request filed for a held call (see [`ask`]); public so the shape is testable.
#[allow(clippy::too_many_arguments)]
pub fn call_request(
    issuer: &str,
    client_id: &str,
    client_name: Option<String>,
    server: &str,
    tool: &str,
    arguments: &Value,
    kind: ToolKind,
    warnings: Vec<String>,
) -> ActionRequest {
    let hash = args_hash(arguments);
    let resource = call_resource(issuer, server, tool, &hash);
    let shown_args = match arguments {
        Value::Null => serde_json::json!({}),
        v => redacted_args(v),
    };
    let detail = serde_json::json!({
        "type": MCP_TOOL_CALL,
        "server": server,
        "tool": tool,
        "tool_kind": kind.as_str(),
        "arguments": shown_args,
        "arguments_hash": hash,
        "locations": [resource],
    });
    ActionRequest {
        client_id: client_id.to_owned(),
        client_name,
        verified: false,
        via: "mcp".into(),
        binding_message: None,
        user_code: None,
        scopes: Vec::new(),
        resources: vec![resource],
        authorization_details: Some(serde_json::json!([detail])),
        summary: std::iter::once(format!("Call {} on {server}", cut(tool, VALUE_CHARS)))
            .chain(
                args_summary(arguments)
                    .into_iter()
                    .map(|l| format!("  {l}")),
            )
            .collect(),
        warnings,
        broader: Some(any_arguments_pattern(issuer, server, tool)),
    }
}

/// Files an action approval for a held tool call and announces it; returns its id. The person
/// sees the tool, the server and the arguments (redacted, cut); the approval is bound to the
/// arguments' hash, and "remember" may cover the tool with any arguments instead.
pub async fn ask(
    authority: &Authority,
    client_id: &str,
    server: &str,
    tool: &str,
    arguments: &Value,
    kind: ToolKind,
    warnings: Vec<String>,
) -> Result<String, StoreError> {
    let lookup = client_id.to_owned();
    let client_name = authority
        .store()
        .read(move |c| crate::store::agents::get(c, &lookup).map_err(StoreError::from))
        .await?
        .and_then(|a| a.client_name);
    let req = call_request(
        authority.issuer(),
        client_id,
        client_name,
        server,
        tool,
        arguments,
        kind,
        warnings,
    );
    let id = random_id("apr_");
    let broker = authority.broker().clone();
    let (aid, ttl) = (id.clone(), broker.ttl());
    let row = authority
        .store()
        .write(move |tx| broker.file_action(tx, &aid, &req, ttl))
        .await?;
    authority.broker().announce(&row);
    Ok(id)
}

/// Records an MCP request (`mcp.call`): server, tool (or resource / prompt), method, argument
/// hash and redacted summary, decision, channel, duration and outcome; never raw arguments or
/// results. The event's outcome follows the detail's `outcome`: `ok` and `tool_error` (the call
/// ran) are ok, `denied` and `held` denied, anything else rejected. Best effort.
pub async fn record_call(authority: &Authority, client_id: Option<&str>, detail: Value) {
    let outcome = match detail.get("outcome").and_then(Value::as_str) {
        Some("ok" | "tool_error") => Outcome::Ok,
        Some("denied" | "held") => Outcome::Denied,
        _ => Outcome::Rejected,
    };
    let client = client_id.map(str::to_owned);
    let r = authority
        .store()
        .write(move |tx| {
            tx.append(NewEvent::new(
                EventKind::McpCall,
                outcome,
                client.as_deref(),
                detail,
            ))
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not record an MCP call");
    }
}

/// Records that a stdio server's process ended (`mcp.server_exited`), with its exit status and
/// when it restarts. Best effort.
pub async fn record_exit(
    store: &Store,
    server: &str,
    status: Option<i32>,
    restart_in_ms: Option<u64>,
) {
    let detail = serde_json::json!({
        "server": server,
        "status": status,
        "restart_in_ms": restart_in_ms,
    });
    let r = store
        .write(move |tx| {
            tx.append(NewEvent::new(
                EventKind::McpServerExited,
                Outcome::Rejected,
                None,
                detail,
            ))
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not record an MCP server's exit");
    }
}

#[cfg(test)]
mod tests;
