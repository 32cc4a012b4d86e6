import { describe, expect, it } from "vitest";
import { describeEvent, joinScopes, type DescribeContext } from "./events";
import type { Event, JsonValue } from "./types";

function ev(kind: string, detail: JsonValue, client_id: string | null = "c1", outcome = "ok"): Event {
  return { id: 1, ts: 0, kind, outcome, client_id, detail, hash: "00" };
}

const ctx: DescribeContext = {
  agentName: (id) => (id === "c1" ? "Claude Code" : undefined),
  connectionHost: (name) => (name === "github" ? "api.github.com" : undefined),
};

describe("describeEvent", () => {
  it.each<[string, Event, string]>([
    ["token issued", ev("token.issued", { via: "authorization_code", scopes: ["mail:read"] }), "Claude Code was issued a token for mail:read"],
    ["token via ciba", ev("token.issued", { via: "ciba", scopes: ["mail:send"] }), "Claude Code was issued a token for mail:send via ciba"],
    ["gateway call", ev("gateway.call", { connection: "github", method: "GET", path: "/user", status: 200, latency_ms: 34, decision: "allow" }), "gateway GET api.github.com/user → 200 in 34 ms"],
    ["gateway denied, unknown host", ev("gateway.call", { connection: "files", method: "DELETE", path: "/a", status: 403, latency_ms: 5, decision: "deny" }), "gateway DELETE files/a → 403 in 5 ms (denied)"],
    ["gateway approved", ev("gateway.call", { connection: "github", method: "POST", path: "/repos", status: 201, latency_ms: 900, decision: "approved" }), "gateway POST api.github.com/repos → 201 in 900 ms (you approved)"],
    ["name from detail when not known", ev("agent.registered", { client_name: "Cursor" }, "c9"), "Cursor registered as a new agent"],
    ["client id as last resort", ev("agent.registered", {}, "c9"), "c9 registered as a new agent"],
    ["agent revoked", ev("agent.revoked", { summary: { grants: 2, tokens: 5 } }), "Claude Code was revoked (2 grants, 5 tokens)"],
    ["consent requested, many scopes", ev("consent.requested", { scopes: ["openid", "profile", "email", "mail:read", "mail:send"] }), "Claude Code asked for openid, profile, email and 2 more"],
    ["consent approved", ev("consent.approved", { scopes_granted: ["mail:read"], channel: "window" }), "Claude Code was approved for mail:read (window)"],
    ["consent denied", ev("consent.denied", { channel: "tray" }, "c1", "denied"), "Claude Code was denied (tray)"],
    ["consent expired", ev("consent.expired", { waited_ms: 120000 }, "c1", "denied"), "Claude Code's sign-in request expired unanswered after 120 s"],
    ["action requested", ev("action.requested", { binding_message: "send mail to alex" }), "Claude Code asked to act: send mail to alex"],
    ["action requested, types", ev("action.requested", { detail_types: ["message_send"] }), "Claude Code asked to act: message_send"],
    ["action approved", ev("action.approved", { channel: "notification" }), "Claude Code's action was approved (notification)"],
    ["token used", ev("token.used", { uses_left: 0 }), "Claude Code used a limited token (0 uses left)"],
    ["token revoked whole grant", ev("token.revoked", { whole_grant: true, tokens_revoked: 3 }), "Claude Code's grant was revoked (3 tokens)"],
    ["token revoked one", ev("token.revoked", { kind: "access", whole_grant: false }), "Claude Code's access token was revoked"],
    ["request rejected anonymous", ev("request.rejected", { endpoint: "/token", error: "invalid_grant" }, null, "rejected"), "A /token request was rejected: invalid_grant"],
    ["request rejected agent", ev("request.rejected", { endpoint: "/authorize", error: "invalid_scope" }, "c1", "rejected"), "Claude Code's /authorize request was rejected: invalid_scope"],
    ["rule created", ev("rule.created", { rule: { id: 4, effect: "allow", action: "mail:send", resource: "*", agent: "c1" } }), "Rule #4 created: allow mail:send on * for c1"],
    ["rule hit", ev("rule.hit", { rule_ids: [4, 7], decision: "allow" }), "Rule #4, #7 decided allow for Claude Code"],
    ["paused", ev("agents.paused", { by: "desktop" }, null), "All agents paused (by desktop)"],
    ["resumed", ev("agents.resumed", {}, null), "Agents resumed"],
    ["connection added", ev("connection.added", { connection: "github", kind: "bearer", provider: "api.github.com" }, null), "Connection github (bearer, api.github.com) added"],
    ["connection refreshed", ev("connection.refreshed", { connection: "github", provider: "github" }, null), "Connection github refreshed its upstream token"],
    ["connection expired", ev("connection.expired", { connection: "github", reason: "the provider refused the refresh: invalid_grant" }, null, "rejected"), "Connection github expired: the provider refused the refresh: invalid_grant"],
    ["connection reconnected", ev("connection.reconnected", { connection: "github" }, null), "Connection github reconnected"],
    ["agent suspended", ev("agent.suspended", { by: "desktop", client_name: "Claude Code" }), "Claude Code was suspended"],
    ["agent resumed", ev("agent.resumed", { by: "desktop" }), "Claude Code was resumed"],
    ["grant revoked", ev("grant.revoked", { grant_id: 4, scopes: ["mail:read"], resources: [], tokens_revoked: 2 }), "Claude Code's grant for mail:read was revoked (2 tokens)"],
    ["kill switch", ev("kill_switch.pulled", { by: "desktop", summary: { agents: 3, grants: 4, tokens: 9, pendingDenied: 1 } }, null), "Kill switch pulled: agents paused, 4 grants and 9 tokens revoked"],
    ["code replayed", ev("code.replayed", { grant_id: 1 }, "c1", "rejected"), "Claude Code replayed an authorization code; its tokens were revoked"],
    ["mcp call allowed", ev("mcp.call", { server: "notes", tool: "echo", method: "tools/call", decision: "allow", duration_ms: 4, outcome: "ok" }), "Claude Code called echo on notes — 4 ms"],
    ["mcp call approved", ev("mcp.call", { server: "demo", tool: "delete_note", decision: "approved", channel: "notification", duration_ms: 12, outcome: "ok" }), "Claude Code called delete_note on demo — approved (notification), 12 ms"],
    ["mcp call approved, no channel", ev("mcp.call", { server: "demo", tool: "delete_note", decision: "approved", outcome: "ok" }), "Claude Code called delete_note on demo — approved"],
    ["mcp call denied", ev("mcp.call", { server: "notes", tool: "delete_note", decision: "denied", outcome: "denied", duration_ms: 900 }, "c1", "denied"), "Claude Code called delete_note on notes — denied by you, 900 ms"],
    ["mcp call expired", ev("mcp.call", { server: "notes", tool: "delete_note", decision: "expired", outcome: "denied" }, "c1", "denied"), "Claude Code called delete_note on notes — not answered in time"],
    ["mcp call refused", ev("mcp.call", { server: "notes", tool: "rm", decision: "deny", outcome: "denied" }, "c1", "denied"), "Claude Code called rm on notes — refused"],
    ["mcp call held", ev("mcp.call", { server: "notes", tool: "echo", decision: "held", outcome: "held" }, "c1", "denied"), "Claude Code called echo on notes — held: its definition awaits your review"],
    ["mcp call tool error", ev("mcp.call", { server: "notes", tool: "add", decision: "allow", duration_ms: 2, outcome: "tool_error" }), "Claude Code called add on notes — the tool reported an error, 2 ms"],
    ["mcp call unavailable", ev("mcp.call", { server: "notes", tool: "add", decision: "allow", duration_ms: 1, outcome: "unavailable" }), "Claude Code called add on notes — the server was unavailable, 1 ms"],
    ["mcp resource read", ev("mcp.call", { server: "notes", resource: "note://welcome", method: "resources/read", decision: "allow", outcome: "ok", duration_ms: 3 }), "Claude Code read note://welcome on notes — 3 ms"],
    ["mcp prompt", ev("mcp.call", { server: "notes", prompt: "greet", method: "prompts/get", decision: "allow", outcome: "ok" }), "Claude Code got the prompt greet on notes"],
    ["mcp server added", ev("mcp.server_added", { server: "notes", transport: "stdio", by: "cli" }, null), "MCP server notes (stdio) added from the CLI"],
    ["mcp server removed", ev("mcp.server_removed", { server: "notes", transport: "stdio", tools: 3, by: "desktop" }, null), "MCP server notes removed in the app"],
    ["mcp tool changed", ev("mcp.tool_changed", { server: "demo", tool: "echo", old_hash: "sha256:a", new_hash: "sha256:b" }, null), "demo changed the definition of echo — held until you review it"],
    ["mcp tool approved", ev("mcp.tool_approved", { server: "notes", tool: "echo", by: "consent" }), "The definition of echo on notes was approved at consent"],
    ["mcp tool approved by desktop", ev("mcp.tool_approved", { server: "notes", tool: "echo", by: "desktop" }, null), "The definition of echo on notes was approved in the app"],
    ["mcp server exited", ev("mcp.server_exited", { server: "notes", status: 3, restart_in_ms: 250 }, null, "rejected"), "MCP server notes exited with status 3; restarting in 250 ms"],
    ["mcp server failed to start", ev("mcp.server_exited", { server: "notes", status: null, restart_in_ms: 4000 }, null, "rejected"), "MCP server notes went down (or could not start); restarting in 4 s"],
    ["unknown kind", ev("mcp.tool_called", {}, "c1"), "mcp.tool_called (ok) by Claude Code"],
    ["detail not an object", ev("token.issued", "oops"), "Claude Code was issued a token for no scopes"],
  ])("%s", (_, event, want) => expect(describeEvent(event, ctx)).toBe(want));
});

describe("joinScopes", () => {
  it.each<[string[], string]>([
    [[], "no scopes"],
    [["a"], "a"],
    [["a", "b", "c"], "a, b, c"],
    [["a", "b", "c", "d"], "a, b, c and 1 more"],
  ])("%j → %s", (s, want) => expect(joinScopes(s)).toBe(want));
});
