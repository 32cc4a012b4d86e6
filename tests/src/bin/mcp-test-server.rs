//! `mcp-test-server`: the upstream MCP server of the gateway's black-box tests, spoken over stdio.
//!
//! Tools (kinds come from their annotations, which is what the gateway's default policy reads):
//! - `echo {text}` (readOnlyHint): returns `text`. Its description comes from env
//!   `MCP_TEST_ECHO_DESCRIPTION`, else from the file named by `MCP_TEST_DESCRIPTION_FILE`, re-read
//!   at every `tools/list`, so a test can change a definition after consent without a restart.
//! - `add {a, b}` (readOnlyHint): returns the sum as text.
//! - `delete_note {id}` (destructiveHint): appends `delete_note <json args>` to the file named by
//!   `MCP_TEST_CALLS` on every call that reaches it, so a test can prove a denied call never did.
//! - `crash`: exits the process with status 3 (the gateway's supervisor must restart it).
//! - `whoami`: says whether `MCP_TEST_SECRET` is set and its length, never its value: proves the
//!   vault injected the secret without the test ever seeing it in a tool result.
//!
//! With `--http` it serves the same over MCP Streamable HTTP instead (see [`serve_http`]).
//!
//! Also one text resource `note://welcome` and one prompt `greet {name}`. listChanged is
//! advertised false everywhere: the gateway must notice definition changes by itself.
//!
//! Written against the handler trait directly (not `#[tool_router]`) because `echo`'s description
//! is decided at each `tools/list`, which the macros' static definitions cannot express.

use std::io::Write;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, JsonObject, ListPromptsResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument,
    PromptMessage, PromptsCapability, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourcesCapability, Role, ServerCapabilities,
    ServerConfig, Tool, ToolAnnotations, ToolsCapability,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

/// The description `echo` has when neither env variable says otherwise.
const DEFAULT_ECHO_DESCRIPTION: &str = "Echoes its text argument back.";
const WELCOME_URI: &str = "note://welcome";
const WELCOME_TEXT: &str = "Welcome to the Gatehouse MCP test server.";

#[derive(Debug, Clone, Copy)]
struct TestServer;

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("schemas are objects"),
    }
}

/// `echo`'s description, decided now (env first, then the file, then the default).
fn echo_description() -> String {
    if let Ok(d) = std::env::var("MCP_TEST_ECHO_DESCRIPTION") {
        return d;
    }
    if let Some(path) = std::env::var_os("MCP_TEST_DESCRIPTION_FILE") {
        // A missing or unreadable file falls back to the default rather than failing the list:
        // the test decides the description by writing the file, possibly after startup.
        if let Ok(d) = std::fs::read_to_string(path) {
            return d.trim_end_matches('\n').to_owned();
        }
    }
    DEFAULT_ECHO_DESCRIPTION.to_owned()
}

fn tools() -> Vec<Tool> {
    let mut echo = Tool::new(
        "echo",
        echo_description(),
        schema(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": "What to echo"}},
            "required": ["text"]
        })),
    );
    echo.annotations = Some(ToolAnnotations::new().read_only(true));

    let mut add = Tool::new(
        "add",
        "Adds two numbers.",
        schema(json!({
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"]
        })),
    );
    add.annotations = Some(ToolAnnotations::new().read_only(true));

    let mut delete_note = Tool::new(
        "delete_note",
        "Deletes a note by id.",
        schema(json!({
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"]
        })),
    );
    delete_note.annotations = Some(ToolAnnotations::new().read_only(false).destructive(true));

    let crash = Tool::new(
        "crash",
        "Exits the server process with status 3.",
        schema(json!({"type": "object", "properties": {}})),
    );
    let whoami = Tool::new(
        "whoami",
        "Says whether MCP_TEST_SECRET is set and how long it is (never its value).",
        schema(json!({"type": "object", "properties": {}})),
    );
    vec![echo, add, delete_note, crash, whoami]
}

fn text_result(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

fn tool_error(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(text)]).into()
}

fn call(name: &str, args: &JsonObject) -> Result<CallToolResponse, ErrorData> {
    Ok(match name {
        "echo" => match args.get("text").and_then(Value::as_str) {
            Some(t) => text_result(t),
            None => tool_error("echo needs a string argument `text`"),
        },
        "add" => match (
            args.get("a").and_then(Value::as_f64),
            args.get("b").and_then(Value::as_f64),
        ) {
            (Some(a), Some(b)) => {
                let sum = a + b;
                // Integers print without a fractional part, so `add {a:2,b:3}` is "5".
                if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
                    text_result(format!("{}", sum as i64))
                } else {
                    text_result(format!("{sum}"))
                }
            }
            _ => tool_error("add needs numbers `a` and `b`"),
        },
        "delete_note" => {
            if let Some(path) = std::env::var_os("MCP_TEST_CALLS") {
                let line = format!("delete_note {}\n", Value::Object(args.clone()));
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(line.as_bytes()));
                if let Err(e) = written {
                    return Ok(tool_error(format!("could not record the call: {e}")));
                }
            }
            let id = args.get("id").and_then(Value::as_str).unwrap_or("");
            text_result(format!("deleted note {id}"))
        }
        "crash" => {
            eprintln!("mcp-test-server: crash tool called, exiting with status 3");
            std::process::exit(3);
        }
        "whoami" => {
            let (set, len) = match std::env::var("MCP_TEST_SECRET") {
                Ok(s) => (true, s.len()),
                Err(_) => (false, 0),
            };
            text_result(json!({"secret_set": set, "secret_len": len}).to_string())
        }
        other => {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {other}"),
                None,
            ));
        }
    })
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        let mut caps = ServerCapabilities::default();
        let mut tools = ToolsCapability::default();
        tools.list_changed = Some(false);
        caps.tools = Some(tools);
        let mut resources = ResourcesCapability::default();
        resources.list_changed = Some(false);
        caps.resources = Some(resources);
        let mut prompts = PromptsCapability::default();
        prompts.list_changed = Some(false);
        caps.prompts = Some(prompts);
        ServerConfig::new(caps).with_server_info(Implementation::new(
            "mcp-test-server",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // ttl 0: no client may cache the list, since `echo`'s description can change any time.
        Ok(ListToolsResult::with_all_items(tools()).with_ttl_ms(0))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        call(&request.name, &args)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(WELCOME_URI, "welcome")
                .with_description("A short welcome note")
                .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != WELCOME_URI {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            ));
        }
        Ok(ReadResourceResult::new(vec![ResourceContents::text(WELCOME_TEXT, WELCOME_URI)]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "greet",
            Some("Greets someone by name"),
            Some(vec![
                PromptArgument::new("name")
                    .with_description("Who to greet")
                    .with_required(true),
            ]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != "greet" {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt: {}", request.name),
                None,
            ));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("stranger");
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Please greet {name} warmly."),
        )])
        .with_description("A greeting")
        .into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--http") {
        return serve_http().await;
    }
    let running = TestServer.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// `mcp-test-server --http`: the same server as a remote one, MCP Streamable HTTP at
/// `http://127.0.0.1:PORT/mcp` (printed as `{"listening": URL}` on stdout). With
/// `MCP_TEST_EXPECT_BEARER` set, every request must carry exactly that bearer token, else 401:
/// the gateway's remote-server test proves the vault credential (and not the agent's token)
/// reaches the upstream.
async fn serve_http() -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let expected = std::env::var("MCP_TEST_EXPECT_BEARER").ok();
    let service = StreamableHttpService::new(
        || Ok(TestServer),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::any(move |req: axum::extract::Request| {
            let service = service.clone();
            let expected = expected.clone();
            async move {
                use axum::response::IntoResponse;
                let presented = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(want) = expected
                    && presented.as_deref() != Some(format!("Bearer {want}").as_str())
                {
                    eprintln!("mcp-test-server: refused a request with the wrong credential");
                    return axum::http::StatusCode::UNAUTHORIZED.into_response();
                }
                let res = service.handle(req).await;
                let (parts, body) = res.into_parts();
                axum::response::Response::from_parts(parts, axum::body::Body::new(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    println!("{}", json!({ "listening": url }));
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}
