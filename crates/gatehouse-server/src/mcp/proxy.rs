//! The MCP server an agent talks to at `/mcp/{name}`: an rmcp `ServerHandler` that answers from
//! the upstream, showing only the tools the agent's grant covers and the person approved
//! (pinned), and putting every `tools/call` through the policy, an approval when it asks, and
//! the audit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::Authority;
use gatehouse_core::gateway::Verdict;
use gatehouse_core::mcp::{self, ToolKind};
use gatehouse_core::store::approvals::ApprovalStatus;
use gatehouse_core::store::mcp::ToolStatus;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, Implementation, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};

use super::Caller;
use super::upstream::Upstream;

/// What an agent is told when the person declined (or nobody answered): it may carry on.
const DECLINED: &str = "The person declined this tool call in Gatehouse. Do not retry it \
                        unchanged; continue without it or ask the person.";
const EXPIRED: &str = "Nobody approved this tool call in Gatehouse in time, so it did not run. \
                       Ask the person before trying again.";

#[derive(Clone)]
pub(crate) struct Proxy {
    authority: Arc<Authority>,
    upstream: Arc<Upstream>,
}

impl Proxy {
    pub(crate) fn new(authority: Arc<Authority>, upstream: Arc<Upstream>) -> Self {
        Self {
            authority,
            upstream,
        }
    }

    fn name(&self) -> &str {
        self.upstream.name()
    }
}

/// The caller the HTTP layer authenticated; a request without one never reaches here.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
}

fn text_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A failure of the upstream as the agent gets it: its own JSON-RPC errors pass through, a lost
/// connection becomes "unavailable".
fn upstream_error(name: &str, e: ServiceError) -> ErrorData {
    match e {
        ServiceError::McpError(e) => e,
        other => ErrorData::internal_error(
            format!("the MCP server {name} is unavailable: {other}"),
            None,
        ),
    }
}

impl Proxy {
    /// Records one request in the audit (`mcp.call`) after the fact, off the agent's path: the
    /// answer does not wait for the write (like the API gateway's `gateway.call`).
    async fn audit(&self, client_id: &str, detail: Value) {
        let authority = self.authority.clone();
        let client_id = client_id.to_owned();
        tokio::spawn(async move {
            mcp::record_call(&authority, Some(&client_id), detail).await;
        });
    }

    /// The server-wide scope resources and prompts need.
    fn need_server_scope(&self, caller: &Caller) -> Result<(), ErrorData> {
        if mcp::server_allowed(&caller.scopes, self.name()) {
            Ok(())
        } else {
            Err(ErrorData::invalid_request(
                format!(
                    "resources and prompts of {} need the scope {}",
                    self.name(),
                    mcp::server_scope(self.name())
                ),
                None,
            ))
        }
    }

    async fn call(
        &self,
        caller: &Caller,
        request: CallToolRequestParams,
        detail: &mut Value,
    ) -> Result<CallToolResult, ErrorData> {
        let name = self.name().to_owned();
        let tool = request.name.to_string();
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let hash = mcp::args_hash(&arguments);
        detail["args_hash"] = json!(hash);
        detail["args"] = json!(mcp::args_summary(&arguments));
        if !mcp::tool_allowed(&caller.scopes, &name, &tool) {
            detail["decision"] = json!("deny");
            detail["outcome"] = json!("denied");
            return Ok(text_error(format!(
                "this token does not cover the tool {tool}: it needs the scope {}",
                mcp::tool_scope(&name, &tool)
            )));
        }
        let lookup = mcp::lookup_call(&self.authority, &caller.client_id, &name, &tool, &hash)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read an MCP tool and the policy");
                ErrorData::internal_error("Gatehouse could not read its policy", None)
            })?
            .ok_or_else(|| {
                ErrorData::invalid_request(format!("no MCP server named {name}"), None)
            })?;
        let Some(row) = lookup.tool else {
            detail["decision"] = json!("deny");
            detail["outcome"] = json!("error");
            return Err(ErrorData::invalid_params(
                format!("{name} has no tool named {tool}"),
                None,
            ));
        };
        if row.status() != ToolStatus::Pinned {
            detail["decision"] = json!("held");
            detail["outcome"] = json!("held");
            let why = match row.status() {
                ToolStatus::Removed => format!("{name} no longer offers the tool {tool}"),
                ToolStatus::New => format!(
                    "the tool {tool} is new and held until you approve it in Gatehouse (MCP servers view, or `gatehouse mcp approve {name} {tool}`)"
                ),
                _ => format!("the tool {tool} is {}", mcp::HELD_MESSAGE),
            };
            return Ok(text_error(why));
        }
        let kind = mcp::tool_kind(row.definition.get("annotations"));
        detail["tool_kind"] = json!(kind.as_str());
        match mcp::apply_policy(&lookup.decision, kind) {
            Verdict::Forward => detail["decision"] = json!("allow"),
            Verdict::Refuse(r) => {
                detail["decision"] = json!("deny");
                detail["outcome"] = json!("denied");
                return Ok(text_error(format!(
                    "Gatehouse refused this tool call: {}",
                    r.description()
                )));
            }
            Verdict::Ask { warnings } => {
                let approval = self.ask(caller, &tool, &arguments, kind, warnings).await;
                if let Ok((id, _)) = &approval {
                    detail["approval_id"] = json!(id);
                    detail["channel"] = json!(self.channel(id).await);
                }
                match approval {
                    Ok((_, ApprovalStatus::Approved)) => {
                        detail["decision"] = json!("approved");
                    }
                    Ok((_, status)) => {
                        let expired = status != ApprovalStatus::Denied;
                        detail["decision"] = json!(if expired { "expired" } else { "denied" });
                        detail["outcome"] = json!("denied");
                        return Ok(text_error(if expired { EXPIRED } else { DECLINED }));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not ask for an MCP tool call");
                        detail["decision"] = json!("deny");
                        detail["outcome"] = json!("error");
                        return Ok(text_error(
                            "Gatehouse could not ask the person about this call, so it did not run",
                        ));
                    }
                }
            }
        }
        let peer = match self.upstream.peer() {
            Ok(p) => p,
            Err(e) => {
                detail["outcome"] = json!("unavailable");
                return Ok(text_error(e.0));
            }
        };
        let mut forwarded = CallToolRequestParams::new(tool);
        if let Some(args) = request.arguments {
            forwarded = forwarded.with_arguments(args);
        }
        match peer.call_tool(forwarded).await {
            Ok(result) => {
                let failed = result.is_error == Some(true);
                detail["outcome"] = json!(if failed { "tool_error" } else { "ok" });
                Ok(result)
            }
            Err(ServiceError::McpError(e)) => {
                detail["outcome"] = json!("error");
                Err(e)
            }
            Err(other) => {
                detail["outcome"] = json!("unavailable");
                Ok(text_error(format!(
                    "the MCP server {name} failed during this call ({other}); Gatehouse restarts it"
                )))
            }
        }
    }

    /// The upstream connection for a resources or prompts request: the caller needs the
    /// server's scope; `Ok(None)` when the upstream said it has no such capability (the answer is
    /// then an empty list).
    fn peer_for(
        &self,
        ctx: &RequestContext<RoleServer>,
        capable: fn(&ServerCapabilities) -> bool,
    ) -> Result<Option<Peer<RoleClient>>, ErrorData> {
        let caller = caller(ctx)?;
        self.need_server_scope(&caller)?;
        if self
            .upstream
            .info()
            .is_some_and(|i| !capable(&i.capabilities))
        {
            return Ok(None);
        }
        self.upstream
            .peer()
            .map(Some)
            .map_err(|e| ErrorData::internal_error(e.0, None))
    }

    /// Where a decided approval was decided (`notification`, `tray`, `window`, `terminal`,
    /// `jsonl`, `timeout`, ...), for the audit.
    async fn channel(&self, id: &str) -> Option<String> {
        let id = id.to_owned();
        self.authority
            .store()
            .read(move |c| {
                gatehouse_core::store::approvals::get(c, &id)
                    .map_err(gatehouse_core::store::StoreError::from)
            })
            .await
            .ok()
            .flatten()
            .and_then(|r| r.channel)
    }

    /// Files the approval and waits for the person (or the timeout).
    async fn ask(
        &self,
        caller: &Caller,
        tool: &str,
        arguments: &Value,
        kind: ToolKind,
        warnings: Vec<String>,
    ) -> Result<(String, ApprovalStatus), gatehouse_core::store::StoreError> {
        let id = mcp::ask(
            &self.authority,
            &caller.client_id,
            self.name(),
            tool,
            arguments,
            kind,
            warnings,
        )
        .await?;
        let ttl = self.authority.broker().ttl() + Duration::from_millis(500);
        let status = self.authority.broker().wait(&id, ttl).await?;
        Ok((id, status))
    }
}

impl ServerHandler for Proxy {
    fn get_info(&self) -> ServerConfig {
        let upstream = self.upstream.info();
        let mut caps = ServerCapabilities::default();
        caps.tools = Some(Default::default());
        caps.resources = Some(Default::default());
        caps.prompts = Some(Default::default());
        let mut info = InitializeResult::new(caps);
        info.server_info = Implementation::new(
            format!("gatehouse/{}", self.name()),
            env!("CARGO_PKG_VERSION"),
        );
        info.instructions = upstream.and_then(|u| u.instructions.clone());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&ctx)?;
        let name = self.name().to_owned();
        let tools = self
            .upstream
            .list_tools()
            .await
            .map_err(|e| ErrorData::internal_error(e.0, None))?;
        let rows = mcp::list_tools(self.authority.store(), &name)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read the pinned tools");
                ErrorData::internal_error("Gatehouse could not read the approved tools", None)
            })?;
        // Only what the person approved, exactly as approved, and only what the grant covers.
        let shown = tools
            .iter()
            .filter(|t| mcp::tool_allowed(&caller.scopes, &name, &t.name))
            .filter(|t| {
                let hash = serde_json::to_value(t)
                    .map(|v| mcp::definition_hash(&v))
                    .unwrap_or_default();
                rows.iter().any(|r| {
                    r.name == t.name
                        && r.status() == ToolStatus::Pinned
                        && r.pinned_hash.as_deref() == Some(hash.as_str())
                })
            })
            .cloned()
            .collect();
        Ok(ListToolsResult::with_all_items(shown))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let caller = caller(&ctx)?;
        let mut detail = json!({
            "server": self.name(),
            "method": "tools/call",
            "tool": request.name.to_string(),
        });
        let result = self.call(&caller, request, &mut detail).await;
        detail["duration_ms"] = json!(started.elapsed().as_millis() as u64);
        self.audit(&caller.client_id, detail).await;
        result.map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let Some(peer) = self.peer_for(&ctx, |c| c.resources.is_some())? else {
            return Ok(ListResourcesResult::default());
        };
        peer.list_resources(request.map(strip_meta))
            .await
            .map_err(|e| upstream_error(self.name(), e))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let Some(peer) = self.peer_for(&ctx, |c| c.resources.is_some())? else {
            return Ok(ListResourceTemplatesResult::default());
        };
        peer.list_resource_templates(request.map(strip_meta))
            .await
            .map_err(|e| upstream_error(self.name(), e))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let started = Instant::now();
        let caller = caller(&ctx)?;
        let mut detail = json!({
            "server": self.name(),
            "method": "resources/read",
            "resource": request.uri,
            "decision": "allow",
        });
        let result = async {
            self.need_server_scope(&caller)?;
            let peer = self
                .upstream
                .peer()
                .map_err(|e| ErrorData::internal_error(e.0, None))?;
            peer.read_resource(ReadResourceRequestParams::new(request.uri.clone()))
                .await
                .map_err(|e| upstream_error(self.name(), e))
        }
        .await;
        detail["outcome"] = json!(if result.is_ok() { "ok" } else { "error" });
        detail["duration_ms"] = json!(started.elapsed().as_millis() as u64);
        self.audit(&caller.client_id, detail).await;
        result.map(Into::into)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let Some(peer) = self.peer_for(&ctx, |c| c.prompts.is_some())? else {
            return Ok(ListPromptsResult::default());
        };
        peer.list_prompts(request.map(strip_meta))
            .await
            .map_err(|e| upstream_error(self.name(), e))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let started = Instant::now();
        let caller = caller(&ctx)?;
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let mut detail = json!({
            "server": self.name(),
            "method": "prompts/get",
            "prompt": request.name,
            "args_hash": mcp::args_hash(&arguments),
            "args": mcp::args_summary(&arguments),
            "decision": "allow",
        });
        let result = async {
            self.need_server_scope(&caller)?;
            let peer = self
                .upstream
                .peer()
                .map_err(|e| ErrorData::internal_error(e.0, None))?;
            let mut forwarded = GetPromptRequestParams::new(request.name.clone());
            if let Some(args) = request.arguments.clone() {
                forwarded = forwarded.with_arguments(args);
            }
            peer.get_prompt(forwarded)
                .await
                .map_err(|e| upstream_error(self.name(), e))
        }
        .await;
        detail["outcome"] = json!(if result.is_ok() { "ok" } else { "error" });
        detail["duration_ms"] = json!(started.elapsed().as_millis() as u64);
        self.audit(&caller.client_id, detail).await;
        result.map(Into::into)
    }
}

/// A list request as forwarded upstream: the cursor only (the agent's `_meta` is for Gatehouse).
fn strip_meta(r: PaginatedRequestParams) -> PaginatedRequestParams {
    let mut p = PaginatedRequestParams::default();
    p.cursor = r.cursor;
    p
}
