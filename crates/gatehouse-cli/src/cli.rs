//! The command line: every command, flag and its `--help` text. Parsing only; no behaviour.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The listen address used when neither `--listen` nor `GATEHOUSE_LISTEN` is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8737";

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: a local OAuth 2.1 authorization server and approval broker for AI agents",
    long_about = "Gatehouse: a local OAuth 2.1 authorization server and approval broker for AI agents.\n\n\
Agents get their own identity and narrow, short-lived, revocable tokens; you approve what they ask \
for, and every step lands in a tamper-evident audit log.\n\n\
Start the server with `gatehouse serve`, then inspect and control it from another terminal with \
`gatehouse agents`, `gatehouse log --follow`, `gatehouse revoke CLIENT_ID` and `gatehouse audit verify`.",
    after_help = "Examples:\n  gatehouse serve                         # approve requests in this terminal\n  \
gatehouse log --follow                  # watch what agents do, live\n  \
gatehouse revoke agt_0123...            # cut one agent off at once"
)]
pub struct Cli {
    /// Directory holding Gatehouse's database and lock file.
    ///
    /// Defaults to the platform data directory plus `gatehouse` (for example
    /// `~/.local/share/gatehouse` on Linux, `~/Library/Application Support/gatehouse` on macOS).
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATA_DIR",
        value_name = "DIR",
        help = "Directory holding Gatehouse's database [default: platform data dir + /gatehouse]"
    )]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server on loopback and ask for approvals (terminal, jsonl or deny).
    #[command(
        long_about = "Run the authorization server on loopback and ask for approvals.\n\n\
Only one server may use a data directory at a time. Stop it with Ctrl-C or SIGTERM; approvals \
that are still pending are kept and shown again at the next start.\n\n\
With --approver jsonl, stdout carries one JSON object per line: first \
{\"event\":\"listening\",\"issuer\":...}, then \"approval_requested\", \"approval_decided\" \
(decision: approved, denied or expired) and \"error\" events. Stdin takes one decision per line: \
{\"approve\":\"ID\"}, optionally with \"remember\" (once, 1h, 8h, session, always), \"uses\" (for an action: \
how many times its token may be used) and \"scopes\" \
(a subset of those requested), or {\"deny\":\"ID\"}. Closing stdin does not stop the server. \
Logs go to stderr (filter with GATEHOUSE_LOG, e.g. GATEHOUSE_LOG=debug).",
        after_help = "Examples:\n  gatehouse serve\n  \
gatehouse serve --listen 127.0.0.1:0 --approver jsonl   # for tools: JSON Lines on stdin/stdout\n  \
gatehouse serve --approver deny                         # refuse every request"
    )]
    Serve(ServeArgs),

    /// Show the audit log: the newest events, oldest first; `--follow` keeps watching.
    #[command(after_help = "Examples:\n  gatehouse log\n  \
gatehouse log --follow --agent agt_0123...\n  gatehouse log --json --limit 500 | jq .kind")]
    Log(LogArgs),

    /// List registered agents with what they currently hold.
    #[command(after_help = "Example:\n  gatehouse agents --json | jq '.[].client_id'")]
    Agents(AgentsArgs),

    /// Revoke an agent: its registration, every grant and token, remembered consent, at once.
    #[command(
        long_about = "Revoke an agent: its registration, every grant and token, remembered consent \
and any pending approval, all at once and in one audited step. Works while the server is running.",
        after_help = "Example:\n  gatehouse revoke agt_0123456789abcdef0123456789abcdef"
    )]
    Revoke(RevokeArgs),

    /// List what agents asked you, newest first: pending requests and their history.
    #[command(
        long_about = "List what agents asked you, newest first: consent and action requests, \
still pending or already decided, with who or what decided them (terminal, jsonl, timeout...) and \
how long that took. Read-only; works while the server is running.",
        after_help = "Examples:\n  gatehouse approvals --pending\n  \
gatehouse approvals --json --limit 200 | jq '.[] | select(.status == \"denied\")'"
    )]
    Approvals(ApprovalsArgs),

    /// A guided tour: a demo agent registers, asks consent, then asks to send an email.
    #[command(
        long_about = "A guided tour for newcomers. With `gatehouse serve` running in another \
terminal, a demo agent registers itself, asks your consent (approve it in the serve terminal), \
then asks approval to email a confidential deck to an external address through OpenID CIBA, and \
narrates each step. It never sends any email.",
        after_help = "Example (two terminals):\n  gatehouse serve\n  gatehouse demo-agent"
    )]
    DemoAgent(DemoAgentArgs),

    /// Work with the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },

    /// Policy rules: allow, deny or always ask about agents' actions without a prompt each time.
    #[command(
        long_about = "Policy rules decide an agent's action request before you are asked. A rule \
matches an agent (a client id, or * for every agent), an action type or scope pattern \
(message_send, mail:*, *) and a resource pattern (https://api.github.com/*, *@example.com, *); \
`*` matches any run of characters.\n\n\
Precedence: while Gatehouse is paused everything is denied; otherwise a matching deny rule wins, \
then a matching ask rule (an exception carved out of a broader allow), then allow rules that cover \
every requested action and resource; anything else is put to you. Changes apply to a running \
server at once.",
        after_help = "Examples:\n  gatehouse rules list\n  \
gatehouse rules add --effect deny --action data_delete --resource 'db/prod-*'\n  \
gatehouse rules add --effect allow --agent agt_0123... --action api_request --resource 'https://api.github.com/*' --lifetime 8h\n  \
gatehouse rules rm 3"
    )]
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },

    /// Stop every agent at once: no consent asked, no token issued or refreshed, until resumed.
    #[command(
        long_about = "Stop every agent at once. While paused, /authorize answers access_denied \
without asking you, the token endpoint refuses every grant (even refresh), introspection answers \
inactive for every token, and every policy decision is a denial. Nothing is revoked: \
`gatehouse resume` lets agents carry on. Works while the server is running; audited.",
        after_help = "Example:\n  gatehouse pause && gatehouse log --follow"
    )]
    Pause(PauseArgs),

    /// Lift `gatehouse pause`: agents can use their tokens and ask again.
    #[command(after_help = "Example:\n  gatehouse resume")]
    Resume(PauseArgs),

    /// Upstream accounts (OAuth, API keys, bearer tokens) whose secrets Gatehouse keeps in the OS keyring.
    #[command(
        long_about = "Upstream accounts agents reach through Gatehouse's gateway \
(/gateway/NAME/...) without ever holding the secret. The secret (OAuth access and refresh tokens \
and client secret, an API key or a bearer token) is stored in the OS keyring (Secret \
Service/gnome-keyring or KWallet, macOS Keychain, Windows Credential Manager) under the service \
`gatehouse`, one entry per connection; Gatehouse's database keeps only the name, provider, label, \
URL, scopes, expiry and status. OAuth tokens are refreshed before they expire; a refresh the \
provider refuses marks the connection expired until you reconnect it. If the keyring is missing or \
locked the vault is sealed: nothing is stored anywhere else, and you are told to unlock it. \
Changes are audited (connection.added, connection.refreshed, connection.expired, \
connection.reconnected, connection.removed).",
        after_help = "Examples:\n  gatehouse connections add gh-work --oauth github --client-id Iv1.abc --client-secret-stdin --label work\n  \
gatehouse connections add weather --url https://api.example.com/v1 --api-key --header X-API-Key\n  \
printf %s \"$GITHUB_TOKEN\" | gatehouse connections add github --url https://api.github.com --bearer --label work\n  \
gatehouse connections list\n  gatehouse connections reconnect gh-work\n  gatehouse connections rm weather"
    )]
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
    },

    /// Your own email domains: recipients outside them are flagged when an agent asks to send.
    #[command(
        long_about = "Your own email domains. When an agent asks to send a message \
(authorization_details of type message_send), every recipient outside these domains (or their \
subdomains) is named in the approval as outside your domain, so an email to the wrong, external \
Alex stands out. With no domain set, approvals ask you to check the recipients. Changes are \
audited (settings.changed) and apply to requests filed afterwards.",
        after_help = "Examples:\n  gatehouse domains add example.com\n  \
gatehouse domains list --json\n  gatehouse domains rm old-example.org"
    )]
    Domains {
        #[command(subcommand)]
        command: DomainsCommand,
    },

    /// MCP servers behind Gatehouse: agents reach each at /mcp/NAME with their own token.
    #[command(
        long_about = "MCP servers behind Gatehouse. Each server is exposed to agents at \
http://127.0.0.1:PORT/mcp/NAME (MCP Streamable HTTP, an OAuth protected resource): an agent \
needs a Gatehouse token for it, sees only the tools its grant covers, and every tool call goes \
through your rules and approvals and into the audit log.\n\n\
A server is either a local command Gatehouse starts and supervises (stdio; its environment may \
take secrets from vault connections with --secret-env, so they never reach SQLite or the agent) \
or a remote Streamable HTTP server (--url; --connection names the vault connection whose \
credential is sent to it).\n\n\
Tool definitions are pinned by hash when you consent to a server (or with `gatehouse mcp \
approve`); a tool whose definition changed afterwards, or that appeared since, is held (not \
listed, not callable) until you approve it. Changes are audited (mcp.server_added, \
mcp.server_removed, mcp.tool_approved).",
        after_help = "Examples:\n  gatehouse mcp add notes -- npx -y @modelcontextprotocol/server-filesystem /home/me/notes\n  \
printf %s \"$GITHUB_TOKEN\" | gatehouse connections add github --url https://api.github.com --bearer\n  \
gatehouse mcp add github --secret-env GITHUB_PERSONAL_ACCESS_TOKEN=github -- github-mcp-server stdio\n  \
gatehouse mcp add remote --url https://mcp.example.com/mcp --connection example\n  \
gatehouse mcp list\n  gatehouse mcp tools github\n  gatehouse mcp approve github\n  gatehouse mcp rm notes"
    )]
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
}

impl Command {
    pub fn is_serve(&self) -> bool {
        matches!(self, Command::Serve(_))
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain over every event; exit 1 naming the first bad row.
    #[command(after_help = "Example:\n  gatehouse audit verify && echo intact")]
    Verify(VerifyArgs),
}

/// Who answers approval requests while `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApproverKind {
    /// Ask the person at this terminal.
    Terminal,
    /// JSON Lines for tools: requests on stdout, decisions read from stdin.
    Jsonl,
    /// Deny every request as soon as it arrives.
    Deny,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback only (127.0.0.1 or [::1]); port 0 picks a free port.
    #[arg(
        long,
        env = "GATEHOUSE_LISTEN",
        value_name = "ADDR",
        default_value = DEFAULT_LISTEN,
        value_parser = parse_listen,
    )]
    pub listen: SocketAddr,

    /// Who answers approval requests.
    #[arg(long, value_enum, default_value_t = ApproverKind::Terminal, value_name = "APPROVER")]
    pub approver: ApproverKind,

    /// Seconds a request waits for a decision before it expires (an expiry is a one-time denial).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
    )]
    pub approval_timeout: u64,

    /// How long a write waits for another process's database lock, in milliseconds.
    #[arg(long, hide = true, default_value_t = 5000, value_name = "MS")]
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep running and print new events as they happen (stop with Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,

    /// Only events about this agent (its client id, as `gatehouse agents` shows it).
    #[arg(long, value_name = "CLIENT_ID")]
    pub agent: Option<String>,

    /// Print each event as one JSON object per line.
    #[arg(long)]
    pub json: bool,

    /// How many of the newest events to print first.
    #[arg(short = 'n', long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,

    /// How many of the newest approvals to list.
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub limit: usize,

    /// Only requests still waiting for a decision.
    #[arg(long)]
    pub pending: bool,
}

#[derive(Debug, Args)]
pub struct DemoAgentArgs {
    /// The Gatehouse server to talk to (its issuer URL, as `gatehouse serve` prints it).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ISSUER)]
    pub issuer: String,
}

/// Where `gatehouse serve` listens when started with its defaults.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8737";

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The agent's client id (see `gatehouse agents`).
    #[arg(value_name = "CLIENT_ID")]
    pub client_id: String,

    /// Print what was revoked as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the verification result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: what each matches, its effect, when it expires, and how often it was hit.
    #[command(
        after_help = "Example:\n  gatehouse rules list --json | jq '.[] | select(.hits > 0)'"
    )]
    List(RulesListArgs),
    /// Add a rule (audited). Defaults: every agent, every action, every resource, always.
    #[command(after_help = "Examples:\n  \
gatehouse rules add --effect deny --action message_send --resource '*@competitor.example'\n  \
gatehouse rules add --effect ask --action data_delete\n  \
gatehouse rules add --effect allow --agent agt_0123... --action 'mail:read' --lifetime 1h")]
    Add(RulesAddArgs),
    /// Remove a rule by its id (audited); exit 1 if there is no such rule.
    #[command(after_help = "Example:\n  gatehouse rules rm 3")]
    Rm(RulesRmArgs),
}

#[derive(Debug, Args)]
pub struct RulesListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffectArg {
    /// Let the action through without asking.
    Allow,
    /// Refuse the action without asking (wins over every other rule).
    Deny,
    /// Always ask, even where an allow rule would let it through.
    Ask,
}

/// How long a rule lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LifetimeArg {
    /// Used up by the first request it matches.
    Once,
    /// One hour from now.
    #[value(name = "1h")]
    OneHour,
    /// Eight hours from now.
    #[value(name = "8h")]
    EightHours,
    /// Until the server restarts: only the server makes these (when you remember a decision).
    #[value(hide = true)]
    Session,
    /// Until removed.
    Always,
}

#[derive(Debug, Args)]
pub struct RulesAddArgs {
    /// allow, deny or ask.
    #[arg(long, value_enum, value_name = "EFFECT")]
    pub effect: EffectArg,

    /// The agent's client id (see `gatehouse agents`), or * for every agent.
    #[arg(long, default_value = "*", value_name = "ID")]
    pub agent: String,

    /// Action type or scope pattern, e.g. message_send, data_delete, mail:*, *.
    #[arg(long, default_value = "*", value_name = "PATTERN")]
    pub action: String,

    /// Resource, URL or recipient pattern, e.g. https://api.github.com/*, *@example.com, *.
    #[arg(long, default_value = "*", value_name = "PATTERN")]
    pub resource: String,

    /// How long the rule lives.
    #[arg(long, value_enum, default_value_t = LifetimeArg::Always, value_name = "LIFETIME")]
    pub lifetime: LifetimeArg,

    /// Print the new rule as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RulesRmArgs {
    /// The rule's id (see `gatehouse rules list`).
    #[arg(value_name = "ID")]
    pub id: i64,

    /// Print the removed rule as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Print the new state as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--listen`: an IP socket address (or `localhost:PORT`) that must be loopback, because
/// Gatehouse hands out tokens and must never be reachable from another machine.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("{port:?} is not a port number"))?,
        None => s
            .parse::<SocketAddr>()
            .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8737 or [::1]:8737"))?,
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {addr}: Gatehouse listens on loopback only (127.0.0.1 or [::1]) \
             so that no other machine can reach it"
        ));
    }
    Ok(addr)
}

#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// List your own domains.
    #[command(after_help = "Example:\n  gatehouse domains list --json")]
    List(DomainsListArgs),
    /// Add a domain (e.g. example.com); its subdomains count as yours too.
    #[command(after_help = "Example:\n  gatehouse domains add example.com")]
    Add(DomainArgs),
    /// Remove a domain.
    #[command(after_help = "Example:\n  gatehouse domains rm example.com")]
    Rm(DomainArgs),
}

#[derive(Debug, Args)]
pub struct DomainsListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DomainArgs {
    /// A domain name such as example.com.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List connections (metadata only; secrets never leave the keyring).
    #[command(after_help = "Example:\n  gatehouse connections list --json")]
    List(ConnectionsListArgs),
    /// Add an OAuth connection (you log in at the provider) or an API-key or bearer-token one.
    #[command(
        long_about = "Add a connection.\n\n\
With --oauth PROVIDER (github, google, slack, microsoft, or custom with --authorization-url and \
--token-url), Gatehouse runs the OAuth authorization-code flow with PKCE (S256): it listens on \
127.0.0.1 (--redirect-port, default any free port) for the provider's redirect to \
http://127.0.0.1:PORT/connect/callback, prints the provider's authorization URL and opens it in \
your browser (unless --no-browser), waits for you to log in (--timeout), checks the returned \
state and stores the access and refresh tokens in the OS keyring. Register that redirect URI \
(with a fixed --redirect-port if the provider needs an exact match) in your OAuth app at the \
provider. The client secret, if your app has one, is read from stdin with --client-secret-stdin. \
Several accounts of one provider are several connections, each with its own name and --label.\n\n\
With --api-key or --bearer, the secret is read from stdin, never from the command line (where \
other users and your shell history could see it): the first line is the secret. When stdin is a \
terminal you are prompted and the input is not echoed.\n\n\
Secrets are stored in the OS keyring; the database keeps only the metadata.",
        after_help = "Examples:\n  printf %s \"$CLIENT_SECRET\" | gatehouse connections add gh-work --oauth github --client-id Iv1.abc --client-secret-stdin --label work\n  \
gatehouse connections add mail --oauth google --client-id 123.apps.googleusercontent.com --client-secret-stdin --scopes 'openid email https://www.googleapis.com/auth/gmail.readonly'\n  \
gatehouse connections add corp --oauth custom --authorization-url https://idp.example/authorize --token-url https://idp.example/token --revocation-url https://idp.example/revoke --client-id gatehouse --scopes 'api.read' --url https://api.example\n  \
gatehouse connections add weather --url https://api.example.com/v1 --api-key\n  \
printf %s \"$TOKEN\" | gatehouse connections add github --url https://api.github.com --bearer --label work"
    )]
    Add(Box<ConnectionsAddArgs>),
    /// Log in again to an OAuth connection (after it expired, or to switch accounts).
    #[command(
        long_about = "Run the OAuth flow again for an existing OAuth connection, with the \
provider, client and scopes it was added with: the new tokens replace the old ones in the OS \
keyring and the connection is active again (audited as connection.reconnected). The client secret \
stored with it is reused unless --client-secret-stdin gives a new one.",
        after_help = "Example:\n  gatehouse connections reconnect gh-work --no-browser"
    )]
    Reconnect(ConnectionsReconnectArgs),
    /// Remove a connection: revoke OAuth tokens at the provider, delete its keyring entry.
    #[command(
        long_about = "Remove a connection. For an OAuth connection whose provider has an RFC 7009 \
revocation endpoint (google, or a custom provider with --revocation-url), the refresh token and \
then the access token are revoked there first; the audit event connection.removed records \
upstream_revocation: ok, failed: <reason>, or not_supported. Then the keyring entry and the \
connection are deleted (even if the revocation failed).",
        after_help = "Example:\n  gatehouse connections rm weather"
    )]
    Rm(ConnectionsRmArgs),
}

#[derive(Debug, Args)]
pub struct ConnectionsListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["api_key", "bearer", "oauth"])))]
pub struct ConnectionsAddArgs {
    /// The connection's name, used in /gateway/NAME/...: 1 to 40 of a-z, 0-9 and -.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The upstream's base URL (absolute http or https), e.g. https://api.github.com. Required
    /// for --api-key, --bearer and --oauth custom; an OAuth preset defaults to its API URL.
    #[arg(long, value_name = "URL", required_unless_present = "oauth")]
    pub url: Option<String>,

    /// Connect with OAuth: github, google, slack, microsoft, or custom (with the URLs below).
    #[arg(long, value_name = "PROVIDER")]
    pub oauth: Option<String>,

    /// Your OAuth app's client id at the provider.
    #[arg(long, value_name = "ID", requires = "oauth")]
    pub client_id: Option<String>,

    /// Read your OAuth app's client secret from stdin (first line); without it the client is
    /// public (PKCE only).
    #[arg(long, requires = "oauth")]
    pub client_secret_stdin: bool,

    /// Scopes to request, separated by spaces or commas (default: the preset's).
    #[arg(long, value_name = "SCOPES", requires = "oauth")]
    pub scopes: Option<String>,

    /// Custom provider: its authorization endpoint.
    #[arg(long, value_name = "URL", requires = "oauth")]
    pub authorization_url: Option<String>,

    /// Custom provider: its token endpoint.
    #[arg(long, value_name = "URL", requires = "oauth")]
    pub token_url: Option<String>,

    /// Custom provider: its RFC 7009 revocation endpoint, if it has one.
    #[arg(long, value_name = "URL", requires = "oauth")]
    pub revocation_url: Option<String>,

    #[command(flatten)]
    pub redirect: OAuthRedirectArgs,

    /// The secret is an API key, sent in the header given by --header.
    #[arg(long)]
    pub api_key: bool,

    /// The header carrying the API key.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "X-API-Key",
        requires = "api_key"
    )]
    pub header: String,

    /// The secret is a bearer token, sent as `Authorization: Bearer ...`.
    #[arg(long)]
    pub bearer: bool,

    /// A label to tell several accounts of one provider apart (e.g. work, personal).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub label: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How the CLI waits for an OAuth provider's redirect.
#[derive(Debug, Args)]
pub struct OAuthRedirectArgs {
    /// The port of the loopback redirect URI http://127.0.0.1:PORT/connect/callback (0: any
    /// free port; fix one if your OAuth app needs an exact redirect URI).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub redirect_port: u16,

    /// Print the authorization URL without trying to open a browser (xdg-open).
    #[arg(long)]
    pub no_browser: bool,

    /// How long to wait for the login at the provider, in seconds (at most 600).
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ConnectionsReconnectArgs {
    /// The OAuth connection's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Read a new client secret from stdin (first line) instead of reusing the stored one.
    #[arg(long)]
    pub client_secret_stdin: bool,

    #[command(flatten)]
    pub redirect: OAuthRedirectArgs,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConnectionsRmArgs {
    /// The connection's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// List MCP servers: transport, command or URL, and how many tools are pinned, changed or new.
    #[command(after_help = "Example:\n  gatehouse mcp list --json")]
    List(McpListArgs),
    /// Add an MCP server: a local command after `--` (stdio), or a remote one with --url.
    #[command(
        long_about = "Add an MCP server.\n\n\
A local (stdio) server is the command after `--`, with its arguments; Gatehouse starts it, \
restarts it if it exits, and talks MCP to it over stdin/stdout. --env KEY=VALUE sets a plain \
environment variable (stored in Gatehouse's database, so never a secret: a value that looks like \
one, or a KEY naming a token, secret, key or password, is refused). --secret-env KEY=CONNECTION \
sets KEY to the secret of a vault connection (`gatehouse connections add`), read from the OS \
keyring each time the server starts.\n\n\
A remote server is --url URL (MCP Streamable HTTP); --connection CONNECTION sends that vault \
connection's credential to it. The agent's own token is never passed on.",
        after_help = "Examples:\n  gatehouse mcp add notes -- npx -y @modelcontextprotocol/server-filesystem /home/me/notes\n  \
gatehouse mcp add github --env GITHUB_TOOLSETS=repos,issues --secret-env GITHUB_PERSONAL_ACCESS_TOKEN=github -- github-mcp-server stdio\n  \
gatehouse mcp add remote --url https://mcp.example.com/mcp --connection example"
    )]
    Add(Box<McpAddArgs>),
    /// Show a server's tools: pin status, kind (read-only, destructive), hash and description.
    #[command(
        long_about = "Show the tools a server lists, as Gatehouse last saw them: status \
(pinned: approved as is; changed: its definition differs from the one you approved, held; new: \
never approved, held; removed: the server no longer lists it), kind from the server's annotations \
(read-only tools are allowed by default, destructive and other tools ask), the first 12 \
characters of the definition's hash, and its description. For a changed tool it says what \
changed.",
        after_help = "Example:\n  gatehouse mcp tools github"
    )]
    Tools(McpToolsArgs),
    /// Approve (pin) the current definition of a server's changed and new tools, or of one tool.
    #[command(
        long_about = "Approve the definitions a server lists now: each changed or new tool (or \
only TOOL) is pinned by the hash of its current definition and offered to agents again. Check \
what changed first with `gatehouse mcp tools NAME`. Audited (mcp.tool_approved).",
        after_help = "Examples:\n  gatehouse mcp approve github\n  gatehouse mcp approve github create_issue"
    )]
    Approve(McpApproveArgs),
    /// Remove an MCP server (audited); exit 1 if there is no such server.
    #[command(after_help = "Example:\n  gatehouse mcp rm notes")]
    Rm(McpRmArgs),
}

#[derive(Debug, Args)]
pub struct McpListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct McpAddArgs {
    /// The server's name, used in /mcp/NAME: 1 to 40 of a-z, 0-9 and -.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// A plain environment variable for a local server (never a secret: use --secret-env).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_value)]
    pub env: Vec<(String, String)>,

    /// An environment variable set to the secret of a vault connection (`gatehouse connections`).
    #[arg(long = "secret-env", value_name = "KEY=CONNECTION", value_parser = parse_env_value)]
    pub secret_env: Vec<(String, String)>,

    /// A remote MCP server (Streamable HTTP) instead of a local command.
    #[arg(long, value_name = "URL", conflicts_with_all = ["command", "env", "secret_env"])]
    pub url: Option<String>,

    /// With --url: the vault connection whose credential is sent to the remote server.
    // conflicts_with too: clap does not enforce `requires` when the required arg conflicts with
    // one that is present (the command).
    #[arg(
        long,
        value_name = "CONNECTION",
        requires = "url",
        conflicts_with = "command"
    )]
    pub connection: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// The local server's command and arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct McpToolsArgs {
    /// The server's name (see `gatehouse mcp list`).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct McpApproveArgs {
    /// The server's name (see `gatehouse mcp list`).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Only this tool (default: every changed or new tool of the server).
    #[arg(value_name = "TOOL")]
    pub tool: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct McpRmArgs {
    /// The server's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `KEY=VALUE` of `--env` and `--secret-env`: KEY is an environment variable name
/// (letters, digits and `_`, not starting with a digit); VALUE is everything after the first `=`.
pub fn parse_env_value(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err("expected KEY=VALUE".to_owned());
    };
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{key:?} is not an environment variable name (letters, digits and _, not starting \
             with a digit)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_accepts_loopback_only() {
        assert_eq!(
            parse_listen("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:8737"),
            Ok("[::1]:8737".parse().unwrap())
        );
        assert_eq!(
            parse_listen("localhost:9000"),
            Ok("127.0.0.1:9000".parse().unwrap())
        );
        let err = parse_listen("0.0.0.0:8737").unwrap_err();
        assert!(err.contains("loopback only"), "{err}");
        assert!(parse_listen("192.168.1.2:80").is_err());
        assert!(parse_listen("nonsense").is_err());
    }

    #[test]
    fn serve_defaults() {
        let cli = Cli::try_parse_from(["gatehouse", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.approver, ApproverKind::Terminal);
        assert_eq!(args.approval_timeout, 120);
        assert_eq!(args.busy_timeout_ms, 5000);
    }

    #[test]
    fn mcp_add_takes_the_command_after_the_double_dash() {
        let cli = Cli::try_parse_from([
            "gatehouse",
            "mcp",
            "add",
            "notes",
            "--env",
            "A=1=2",
            "--secret-env",
            "T=gh",
            "--",
            "npx",
            "-y",
            "server",
            "--flag",
            "--json",
        ])
        .unwrap();
        let Command::Mcp {
            command: McpCommand::Add(args),
        } = cli.command
        else {
            panic!("not mcp add")
        };
        assert_eq!(args.name, "notes");
        assert_eq!(args.env, vec![("A".to_owned(), "1=2".to_owned())]);
        assert_eq!(args.secret_env, vec![("T".to_owned(), "gh".to_owned())]);
        assert_eq!(args.command, ["npx", "-y", "server", "--flag", "--json"]);
        assert!(!args.json, "--json after -- belongs to the command");

        for bad in [
            &[
                "gatehouse",
                "mcp",
                "add",
                "r",
                "--url",
                "https://x.example",
                "--",
                "cmd",
            ][..],
            &[
                "gatehouse",
                "mcp",
                "add",
                "r",
                "--url",
                "https://x.example",
                "--env",
                "A=1",
            ],
            &[
                "gatehouse",
                "mcp",
                "add",
                "r",
                "--connection",
                "c",
                "--",
                "cmd",
            ],
            &["gatehouse", "mcp", "add", "r", "--env", "1A=x", "--", "cmd"],
            &[
                "gatehouse",
                "mcp",
                "add",
                "r",
                "--env",
                "novalue",
                "--",
                "cmd",
            ],
            &["gatehouse", "mcp", "add", "r", "cmd"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_values_split_at_the_first_equals_sign() {
        for (input, want) in [
            ("A=b", Some(("A", "b"))),
            ("_A1=", Some(("_A1", ""))),
            ("PATH=/a:/b=c", Some(("PATH", "/a:/b=c"))),
            ("=x", None),
            ("1A=x", None),
            ("A-B=x", None),
            ("noequals", None),
        ] {
            let got = parse_env_value(input).ok();
            let want = want.map(|(k, v)| (k.to_owned(), v.to_owned()));
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn data_dir_is_global() {
        let cli = Cli::try_parse_from(["gatehouse", "agents", "--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/x")));
    }
}
