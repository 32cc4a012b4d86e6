//! One readable line per audit event ("Claude Code was issued a token for mail:read"), from its
//! kind and detail (the detail's keys are the core's snake_case audit fields, see docs/protocol.md).
import type { Event, JsonValue } from "./types";

/** What the line may use besides the event: names of agents, hosts of connections. */
export type DescribeContext = {
  agentName?: (client_id: string) => string | undefined;
  connectionHost?: (name: string) => string | undefined;
};

type Detail = { [key: string]: JsonValue | undefined };

function asDetail(v: JsonValue): Detail {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Detail) : {};
}
function str(d: Detail, k: string): string | undefined {
  const v = d[k];
  return typeof v === "string" && v !== "" ? v : undefined;
}
function num(d: Detail, k: string): number | undefined {
  const v = d[k];
  return typeof v === "number" ? v : undefined;
}
function list(d: Detail, k: string): string[] {
  const v = d[k];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** "a, b, c" or "a, b, c and 2 more"; "no scopes" when empty. */
export function joinScopes(scopes: string[], max = 3): string {
  if (scopes.length === 0) return "no scopes";
  if (scopes.length <= max) return scopes.join(", ");
  return `${scopes.slice(0, max).join(", ")} and ${scopes.length - max} more`;
}

function secs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 1000 ? ` after ${ms} ms` : ` after ${Math.round(ms / 1000)} s`;
}

function via(d: Detail, key = "channel"): string {
  const c = str(d, key);
  return c ? ` (${c})` : "";
}

/** The readable line for `event`. Never throws: an unknown kind or detail shape falls back. */
export function describeEvent(event: Event, ctx: DescribeContext = {}): string {
  const d = asDetail(event.detail);
  const who =
    (event.client_id && ctx.agentName?.(event.client_id)) || str(d, "client_name") || event.client_id || "An agent";
  switch (event.kind) {
    case "agent.registered":
      return `${who} registered as a new agent`;
    case "agent.revoked": {
      const s = asDetail(d["summary"] ?? null);
      const g = num(s, "grants");
      const t = num(s, "tokens");
      const counts = g !== undefined && t !== undefined ? ` (${g} grants, ${t} tokens)` : "";
      return `${who} was revoked${counts}`;
    }
    case "agent.suspended":
      return `${who} was suspended`;
    case "agent.resumed":
      return `${who} was resumed`;
    case "grant.revoked": {
      const n = num(d, "tokens_revoked");
      return `${who}'s grant for ${joinScopes(list(d, "scopes"))} was revoked${n !== undefined ? ` (${n} tokens)` : ""}`;
    }
    case "kill_switch.pulled": {
      const s = asDetail(d["summary"] ?? null);
      const g = num(s, "grants");
      const t = num(s, "tokens");
      return `Kill switch pulled: agents paused${g !== undefined && t !== undefined ? `, ${g} grants and ${t} tokens revoked` : ""}`;
    }
    case "settings.changed":
      return `Setting ${str(d, "key") ?? "?"} changed`;
    case "consent.requested":
      return `${who} asked for ${joinScopes(list(d, "scopes"))}`;
    case "consent.approved":
      return `${who} was approved for ${joinScopes(list(d, "scopes_granted"))}${via(d)}`;
    case "consent.denied":
      return `${who} was denied${via(d)}`;
    case "consent.expired":
      return `${who}'s sign-in request expired unanswered${secs(num(d, "waited_ms"))}`;
    case "consent.remembered":
      return `${who} was let in by a remembered approval${str(d, "remember") ? ` (${str(d, "remember")})` : ""}`;
    case "code.issued":
      return `${who} received an authorization code for ${joinScopes(list(d, "scopes"))}`;
    case "token.issued": {
      const v = str(d, "via");
      const how = v && v !== "authorization_code" && v !== "code" ? ` via ${v}` : "";
      return `${who} was issued a token for ${joinScopes(list(d, "scopes"))}${how}`;
    }
    case "token.refreshed":
      return `${who} refreshed its token`;
    case "token.revoked":
      return d["whole_grant"] === true
        ? `${who}'s grant was revoked (${num(d, "tokens_revoked") ?? "?"} tokens)`
        : `${who}'s ${str(d, "kind") ? `${str(d, "kind")} ` : ""}token was revoked`;
    case "code.replayed":
      return `${who} replayed an authorization code; its tokens were revoked`;
    case "refresh.reuse_detected":
      return `${who} reused a refresh token; its grant was revoked`;
    case "request.rejected": {
      const ep = str(d, "endpoint");
      const err = str(d, "error");
      const what = ep ? `${ep} request` : "request";
      const subject = event.client_id ? `${who}'s ${what}` : `A ${what}`;
      return `${subject} was rejected${err ? `: ${err}` : ""}`;
    }
    case "action.requested": {
      const what = str(d, "binding_message") ?? (list(d, "detail_types").join(", ") || joinScopes(list(d, "scopes")));
      return `${who} asked to act: ${what}`;
    }
    case "action.approved":
      return `${who}'s action was approved${via(d)}`;
    case "action.denied":
      return `${who}'s action was denied${via(d)}`;
    case "action.expired":
      return `${who}'s action request expired unanswered${secs(num(d, "waited_ms"))}`;
    case "token.used": {
      const left = num(d, "uses_left");
      return `${who} used a limited token${left !== undefined ? ` (${left} uses left)` : ""}`;
    }
    case "rule.created":
    case "rule.deleted": {
      const r = asDetail(d["rule"] ?? null);
      const verb = event.kind === "rule.created" ? "created" : "deleted";
      return `Rule #${num(r, "id") ?? "?"} ${verb}: ${str(r, "effect") ?? "?"} ${str(r, "action") ?? "*"} on ${str(r, "resource") ?? "*"} for ${str(r, "agent") ?? "*"}`;
    }
    case "rule.hit": {
      const raw = d["rule_ids"];
      const ids = Array.isArray(raw) ? raw.map((x) => `#${String(x)}`).join(", ") : "";
      return `${ids ? `Rule ${ids}` : "A rule"} decided ${str(d, "decision") ?? "?"} for ${who}`;
    }
    case "agents.paused":
      return `All agents paused${str(d, "by") ? ` (by ${str(d, "by")})` : ""}`;
    case "agents.resumed":
      return `Agents resumed${str(d, "by") ? ` (by ${str(d, "by")})` : ""}`;
    case "gateway.call": {
      const name = str(d, "connection") ?? "?";
      const host = ctx.connectionHost?.(name) ?? name;
      const path = str(d, "path") ?? "/";
      const status = num(d, "status");
      const ms = num(d, "latency_ms");
      const decision = str(d, "decision");
      const tail = decision === "deny" ? " (denied)" : decision === "approved" ? " (you approved)" : "";
      return `gateway ${str(d, "method") ?? "?"} ${host}${path} → ${status ?? "?"}${ms !== undefined ? ` in ${ms} ms` : ""}${tail}`;
    }
    case "connection.refreshed":
      return `Connection ${str(d, "connection") ?? "?"} refreshed its upstream token`;
    case "connection.expired":
      return `Connection ${str(d, "connection") ?? "?"} expired${str(d, "reason") ? `: ${str(d, "reason")}` : ""}`;
    case "connection.reconnected":
      return `Connection ${str(d, "connection") ?? "?"} reconnected`;
    case "connection.added":
    case "connection.removed": {
      const verb = event.kind === "connection.added" ? "added" : "removed";
      const bits = [str(d, "kind"), str(d, "provider")].filter(Boolean).join(", ");
      return `Connection ${str(d, "connection") ?? "?"}${bits ? ` (${bits})` : ""} ${verb}`;
    }
    case "mcp.call":
      return `${who} ${mcpCall(d)}`;
    case "mcp.server_added":
    case "mcp.server_removed": {
      const verb = event.kind === "mcp.server_added" ? "added" : "removed";
      const transport = event.kind === "mcp.server_added" ? str(d, "transport") : undefined;
      return `MCP server ${str(d, "server") ?? "?"}${transport ? ` (${transport})` : ""} ${verb}${mcpBy(d)}`;
    }
    case "mcp.tool_changed":
      return `${str(d, "server") ?? "?"} changed the definition of ${str(d, "tool") ?? "?"} — held until you review it`;
    case "mcp.tool_approved":
      return `The definition of ${str(d, "tool") ?? "?"} on ${str(d, "server") ?? "?"} was approved${mcpBy(d)}`;
    case "mcp.server_exited": {
      const status = num(d, "status");
      const restart = num(d, "restart_in_ms");
      return `MCP server ${str(d, "server") ?? "?"} ${status !== undefined ? `exited with status ${status}` : "went down (or could not start)"}${restart !== undefined ? `; restarting in ${restart < 1000 ? `${restart} ms` : `${Math.round(restart / 1000)} s`}` : ""}`;
    }
    default:
      return `${event.kind} (${event.outcome})${event.client_id ? ` by ${who}` : ""}`;
  }
}

const MCP_BY: Record<string, string> = { consent: " at consent", cli: " from the CLI", desktop: " in the app" };

function mcpBy(d: Detail): string {
  const by = str(d, "by");
  return by ? (MCP_BY[by] ?? ` by ${by}`) : "";
}

const MCP_DECISION: Record<string, string> = {
  denied: "denied by you",
  expired: "not answered in time",
  deny: "refused",
  held: "held: its definition awaits your review",
};

const MCP_OUTCOME: Record<string, string> = {
  tool_error: "the tool reported an error",
  unavailable: "the server was unavailable",
  error: "failed",
};

/** "called delete_note on demo — approved (notification), 12 ms" (after the agent's name). */
function mcpCall(d: Detail): string {
  const server = str(d, "server") ?? "?";
  const method = str(d, "method");
  const what =
    method === "resources/read"
      ? `read ${str(d, "resource") ?? str(d, "uri") ?? "a resource"}`
      : method === "prompts/get"
        ? `got the prompt ${str(d, "prompt") ?? "?"}`
        : `called ${str(d, "tool") ?? "?"}`;
  const parts: string[] = [];
  const decision = str(d, "decision");
  if (decision === "approved") parts.push(`approved${via(d)}`);
  else if (decision && MCP_DECISION[decision]) parts.push(MCP_DECISION[decision]!);
  const outcome = str(d, "outcome");
  if (outcome && MCP_OUTCOME[outcome] && !(decision && MCP_DECISION[decision])) parts.push(MCP_OUTCOME[outcome]!);
  const ms = num(d, "duration_ms");
  if (ms !== undefined) parts.push(`${ms} ms`);
  return `${what} on ${server}${parts.length ? ` — ${parts.join(", ")}` : ""}`;
}
