//! Plain-language lines for OAuth scopes, as the consent window shows them next to the raw string.

const KNOWN: Record<string, string> = {
  openid: "Confirm who you are to the agent",
  profile: "See your basic profile (name, picture)",
  email: "See your email address",
  offline_access: "Stay connected when you are away (refresh its access without asking again)",
  "mail:read": "Read your email",
  "mail:send": "Send email as you",
  "mail:*": "Read and send your email",
  "calendar:read": "See your calendar events",
  "calendar:write": "Create and change events in your calendar",
  "calendar:*": "See and change your calendar",
  "contacts:read": "See your contacts",
};

// The gateway's scope names (see gatehouse-core gateway): {connection}:read for GET/HEAD/OPTIONS,
// {connection}:write for other methods; a connection name is [a-z0-9-]{1,40}.
const GATEWAY = /^([a-z0-9-]{1,40}):(read|write)$/;
// The MCP gateway's: mcp:{server} (every tool, resource and prompt) or mcp:{server}:{tool}.
const MCP = /^mcp:([a-z0-9-]{1,40})(?::(.+))?$/;

/** One plain-language line for `scope`; unknown scopes say so and show the raw string. */
export function describeScope(scope: string): string {
  const known = KNOWN[scope];
  if (known) return known;
  if (scope.startsWith("calendar:")) return `Use your calendar (${scope.slice("calendar:".length)})`;
  const mcp = MCP.exec(scope);
  if (mcp) {
    const [, server, tool] = mcp;
    return tool === undefined
      ? `Use every tool of the MCP server ${server}, and read its resources and prompts`
      : `Use the tool ${tool} of the MCP server ${server}`;
  }
  const m = GATEWAY.exec(scope);
  if (m) {
    const name = m[1];
    return m[2] === "read"
      ? `Read from your ${name} account through Gatehouse`
      : `Make changes in your ${name} account through Gatehouse`;
  }
  return `Custom permission: ${scope}`;
}

/** Whether a scope asks for more than reading (shown with a stronger hint). */
export function isWriteScope(scope: string): boolean {
  return /:(write|send|\*)$/.test(scope) || scope === "offline_access";
}
