//! The MCP servers view's reads and actions: each configured server with its transport, its
//! environment (names, plain values, vault references — never a secret), its tools' counts and
//! its upstream's live status; each tool with its status, kind and, when its definition changed,
//! what was approved and what is listed now; approving tools and removing a server. Bodies over
//! [`Desktop`] (tested without a webview) plus their `#[tauri::command]` wrappers; the core's
//! `mcp` module does the work. Adding a server stays in the CLI (`gatehouse mcp add`).

use gatehouse_core::mcp::{
    self as core_mcp, McpError, McpServerOverview, McpToolRow, ToolCounts, ToolStatus,
};
use gatehouse_core::store::mcp::EnvValue;
use gatehouse_server::mcp::UpstreamStatus;
use serde::Serialize;
use serde_json::Value;
use tauri::State;
use ts_rs::TS;

use crate::error::{IpcError, IpcErrorCode};
use crate::state::{BY, Desktop};

/// How many hex digits of a definition hash the view shows.
const HASH_PREFIX: usize = 12;

impl From<McpError> for IpcError {
    fn from(e: McpError) -> Self {
        match e {
            McpError::Invalid(_) => Self::invalid(e.to_string()),
            McpError::Exists(_) => Self::new(IpcErrorCode::Conflict, e.to_string()),
            McpError::NotFound(_) | McpError::UnknownConnection(_) => {
                Self::not_found(e.to_string())
            }
            McpError::Store(s) => s.into(),
        }
    }
}

/// One environment variable of a stdio server as the view shows it: a plain value (not secret by
/// construction: secrets must be vault references), or the vault connection it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpEnvView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub value: Option<String>,
    /// The vault connection whose credential is injected when the server starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub connection: Option<String>,
}

/// The upstream of a server as this app's server sees it right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum McpUpstreamView {
    /// Not started by this process (e.g. removed meanwhile, or not yet picked up).
    Idle,
    Starting,
    Running {
        /// The upstream's own name and version, as it announced them.
        server: String,
        #[serde(rename = "upMs")]
        #[ts(type = "number")]
        up_ms: u64,
    },
    /// Not running; restarting after `retryInMs`.
    Down {
        reason: String,
        #[serde(rename = "retryInMs")]
        #[ts(type = "number")]
        retry_in_ms: u64,
    },
    Stopped,
}

impl From<UpstreamStatus> for McpUpstreamView {
    fn from(s: UpstreamStatus) -> Self {
        match s {
            UpstreamStatus::Starting => Self::Starting,
            UpstreamStatus::Running { server, since_ms } => Self::Running {
                server,
                up_ms: since_ms,
            },
            UpstreamStatus::Down {
                reason,
                retry_in_ms,
            } => Self::Down {
                reason,
                retry_in_ms,
            },
            UpstreamStatus::Stopped => Self::Stopped,
        }
    }
}

/// A configured MCP server, for the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpServerView {
    pub name: String,
    /// `stdio` or `http`.
    pub transport: String,
    /// stdio: the program and its arguments.
    pub command: Vec<String>,
    /// stdio: the environment given to the program.
    pub env: Vec<McpEnvView>,
    /// http: the upstream's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub url: Option<String>,
    /// http: the vault connection whose credential is sent upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub connection: Option<String>,
    /// Where agents reach it: `{issuer}/mcp/{name}`.
    pub endpoint: String,
    pub tools: ToolCounts,
    pub upstream: McpUpstreamView,
    #[ts(type = "number")]
    pub created_at: i64,
}

/// The parts of a tool definition the person reviews (the ones its hash covers, but the name).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpToolDefinition {
    pub title: Option<String>,
    pub description: Option<String>,
    pub input_schema: Value,
    pub output_schema: Value,
    pub annotations: Value,
}

impl McpToolDefinition {
    fn of(definition: &Value) -> Self {
        let text = |k: &str| definition.get(k).and_then(Value::as_str).map(str::to_owned);
        let json = |k: &str| definition.get(k).cloned().unwrap_or(Value::Null);
        Self {
            title: text("title"),
            description: text("description"),
            input_schema: json("inputSchema"),
            output_schema: json("outputSchema"),
            annotations: json("annotations"),
        }
    }
}

/// One tool of a server, for the expanded row.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpToolView {
    pub name: String,
    pub status: ToolStatus,
    /// From its annotations: read-only, destructive or other.
    #[ts(type = "\"read_only\" | \"destructive\" | \"other\"")]
    pub kind: String,
    /// The first hex digits of its definition's hash as listed now.
    pub hash_prefix: String,
    /// The definition as listed now.
    pub current: McpToolDefinition,
    /// For a `changed` tool: the definition the person approved before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub pinned: Option<McpToolDefinition>,
    /// `consent`, `cli` or `desktop`: who approved the pinned definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub pinned_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub pinned_at: Option<i64>,
}

fn hash_prefix(hash: &str) -> String {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.chars().take(HASH_PREFIX).collect()
}

impl From<&McpToolRow> for McpToolView {
    fn from(t: &McpToolRow) -> Self {
        let status = t.status();
        let annotations = t.definition.get("annotations");
        Self {
            name: t.name.clone(),
            status,
            kind: core_mcp::tool_kind(annotations).as_str().to_owned(),
            hash_prefix: hash_prefix(&t.hash),
            current: McpToolDefinition::of(&t.definition),
            pinned: match status {
                ToolStatus::Changed => t.pinned_definition.as_ref().map(McpToolDefinition::of),
                _ => None,
            },
            pinned_by: t.pinned_by.clone(),
            pinned_at: t.pinned_at,
        }
    }
}

fn env_view(key: &str, value: &EnvValue) -> McpEnvView {
    let (value, connection) = match value {
        EnvValue::Value(v) => (Some(v.clone()), None),
        EnvValue::Connection(c) => (None, Some(c.clone())),
    };
    McpEnvView {
        key: key.to_owned(),
        value,
        connection,
    }
}

/// Every configured server with its tools' counts and its upstream's status. The running
/// upstreams are first brought in line with the configuration (the instance also does so every
/// few seconds), so a server the CLI just added shows as starting and its tools get listed.
pub async fn servers(d: &Desktop) -> Result<Vec<McpServerView>, IpcError> {
    let overviews = core_mcp::server_overviews(&d.store).await?;
    d.mcp.sync().await;
    let mut statuses = d.mcp.statuses();
    Ok(overviews
        .into_iter()
        .map(|McpServerOverview { server, tools }| McpServerView {
            endpoint: core_mcp::resource_uri(&d.issuer, &server.name),
            upstream: statuses
                .remove(&server.name)
                .map_or(McpUpstreamView::Idle, McpUpstreamView::from),
            env: server.env.iter().map(|(k, v)| env_view(k, v)).collect(),
            name: server.name,
            transport: server.transport,
            command: server.command,
            url: server.url,
            connection: server.connection,
            tools,
            created_at: server.created_at,
        })
        .collect())
}

/// Every tool a server has listed (removed ones too), held ones first, then by name. With
/// `relist`, a running upstream is asked for its tools first (the view does when the person opens
/// a server), so a definition changed since the last listing shows as changed at once.
pub async fn tools(d: &Desktop, name: String, relist: bool) -> Result<Vec<McpToolView>, IpcError> {
    if relist && let Err(e) = d.mcp.relist(&name).await {
        // The upstream's status says it is down; the stored tools are still worth showing.
        tracing::info!(server = %name, error = %e, "could not list an MCP server's tools");
    }
    let rows = core_mcp::list_tools(&d.store, &name).await?;
    let mut tools: Vec<McpToolView> = rows.iter().map(McpToolView::from).collect();
    let rank = |s: ToolStatus| match s {
        ToolStatus::Changed => 0,
        ToolStatus::New => 1,
        ToolStatus::Pinned => 2,
        ToolStatus::Removed => 3,
    };
    tools.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(tools)
}

/// Pins the current definition of `tool` (or of every new and changed tool of the server);
/// returns the names of the tools it approved (audited `mcp.tool_approved`, by `desktop`).
pub async fn approve(
    d: &Desktop,
    name: String,
    tool: Option<String>,
) -> Result<Vec<String>, IpcError> {
    let approved = core_mcp::approve_tool(&d.store, &name, tool.as_deref(), BY).await?;
    Ok(approved.into_iter().map(|t| t.name).collect())
}

/// Removes a server and its tools (audited `mcp.server_removed`, by `desktop`) and stops its
/// upstream; returns its name.
pub async fn remove(d: &Desktop, name: String) -> Result<String, IpcError> {
    let removed = core_mcp::remove_server(&d.store, &name, BY).await?;
    // Stop its upstream now rather than at the instance's next sync.
    d.mcp.sync().await;
    Ok(removed.name)
}

type Reply<T> = Result<T, IpcError>;

#[tauri::command]
pub async fn mcp_servers(d: State<'_, Desktop>) -> Reply<Vec<McpServerView>> {
    servers(&d).await
}

#[tauri::command]
pub async fn mcp_tools(
    d: State<'_, Desktop>,
    name: String,
    relist: Option<bool>,
) -> Reply<Vec<McpToolView>> {
    tools(&d, name, relist.unwrap_or(false)).await
}

#[tauri::command]
pub async fn mcp_approve_tool(
    d: State<'_, Desktop>,
    name: String,
    tool: Option<String>,
) -> Reply<Vec<String>> {
    approve(&d, name, tool).await
}

#[tauri::command]
pub async fn mcp_remove(d: State<'_, Desktop>, name: String) -> Reply<String> {
    remove(&d, name).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use gatehouse_core::mcp::NewMcpServer;
    use gatehouse_server::instance::{Instance, InstanceOptions};

    use super::*;

    /// A real instance (lock, store, server on 127.0.0.1:0) on a temp dir.
    async fn desktop() -> (tempfile::TempDir, Desktop) {
        let dir = tempfile::tempdir().expect("tempdir");
        let instance = Instance::start(InstanceOptions {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().expect("addr"),
            approval_timeout: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .expect("instance starts");
        (dir, Desktop::new(instance))
    }

    async fn stop(d: Desktop) {
        d.take_instance().expect("running").shutdown().await;
    }

    fn missing_command(name: &str) -> NewMcpServer {
        NewMcpServer {
            name: name.into(),
            transport: "stdio".into(),
            command: vec![
                "/nonexistent/gatehouse-test-mcp-server".into(),
                "--x".into(),
            ],
            env: BTreeMap::from([("MODE".to_owned(), EnvValue::Value("demo".into()))]),
            ..NewMcpServer::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_server_added_elsewhere_is_listed_started_and_removable() {
        let (_dir, d) = desktop().await;
        assert_eq!(servers(&d).await.expect("lists"), vec![]);
        core_mcp::add_server(&d.store, missing_command("demo"), "cli")
            .await
            .expect("added");

        let listed = servers(&d).await.expect("lists");
        assert_eq!(listed.len(), 1);
        let s = &listed[0];
        assert_eq!(s.name, "demo");
        assert_eq!(s.transport, "stdio");
        assert_eq!(s.command[0], "/nonexistent/gatehouse-test-mcp-server");
        assert_eq!(s.endpoint, format!("{}/mcp/demo", d.issuer));
        assert_eq!(
            s.env,
            vec![McpEnvView {
                key: "MODE".into(),
                value: Some("demo".into()),
                connection: None
            }]
        );
        assert_eq!(s.tools, ToolCounts::default());
        // Picked up by the listing: its program does not exist, so it is starting or down.
        assert!(
            matches!(
                s.upstream,
                McpUpstreamView::Starting | McpUpstreamView::Down { .. }
            ),
            "{:?}",
            s.upstream
        );
        let json = serde_json::to_value(s).expect("serializes");
        assert!(json["upstream"]["state"].is_string(), "{json}");
        assert_eq!(json["tools"]["pinned"], 0);

        assert_eq!(tools(&d, "demo".into(), true).await.expect("tools"), vec![]);
        assert_eq!(
            approve(&d, "demo".into(), None)
                .await
                .expect("nothing held"),
            Vec::<String>::new()
        );
        let e = approve(&d, "demo".into(), Some("echo".into()))
            .await
            .expect_err("never listed");
        assert_eq!(e.code, IpcErrorCode::NotFound);

        assert_eq!(remove(&d, "demo".into()).await.expect("removed"), "demo");
        assert_eq!(servers(&d).await.expect("lists"), vec![]);
        let e = remove(&d, "demo".into()).await.expect_err("gone");
        assert_eq!(e.code, IpcErrorCode::NotFound);
        let e = tools(&d, "demo".into(), true).await.expect_err("gone");
        assert_eq!(e.code, IpcErrorCode::NotFound);
        stop(d).await;
    }

    #[test]
    fn a_changed_tool_shows_what_was_approved_and_what_is_listed() {
        let def = |desc: &str| {
            serde_json::json!({
                "name": "echo",
                "description": desc,
                "inputSchema": {"type": "object"},
                "annotations": {"destructiveHint": true},
            })
        };
        let row = McpToolRow {
            server: "demo".into(),
            name: "echo".into(),
            definition: def("new words"),
            hash: "sha256:0123456789abcdef0123".into(),
            present: true,
            first_seen_at: 1,
            seen_at: 2,
            pinned_hash: Some("sha256:ffff".into()),
            pinned_definition: Some(def("old words")),
            pinned_at: Some(1),
            pinned_by: Some("consent".into()),
        };
        let v = McpToolView::from(&row);
        assert_eq!(v.status, ToolStatus::Changed);
        assert_eq!(v.kind, "destructive");
        assert_eq!(v.hash_prefix, "0123456789ab");
        assert_eq!(v.current.description.as_deref(), Some("new words"));
        assert_eq!(
            v.pinned.as_ref().and_then(|p| p.description.as_deref()),
            Some("old words")
        );
        assert_eq!(v.current.output_schema, Value::Null);

        let pinned = McpToolRow {
            pinned_hash: Some(row.hash.clone()),
            ..row
        };
        let v = McpToolView::from(&pinned);
        assert_eq!(v.status, ToolStatus::Pinned);
        assert_eq!(
            v.pinned, None,
            "only a changed tool carries the old definition"
        );
    }
}
