//! The MCP servers view as plain data: the status badge of an upstream, the tool counts line, a
//! tool's kind and policy default, what changed between the approved and the listed definition,
//! the lines to copy for a client, and the removal confirmation.
import type { JsonValue, McpEnvView, McpServerView, McpToolDefinition, McpToolView, McpUpstreamView } from "./types";

export type Tone = "ok" | "warn" | "danger" | "";
export type Badge = { text: string; tone: Tone; detail: string | null };

function seconds(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

/** The badge of an upstream: its state, and for a down one why and when it retries. */
export function upstreamBadge(u: McpUpstreamView): Badge {
  switch (u.state) {
    case "running":
      return { text: "running", tone: "ok", detail: `${u.server ? `${u.server}, ` : ""}up ${seconds(u.upMs)}` };
    case "starting":
      return { text: "starting", tone: "", detail: null };
    case "down":
      return {
        text: "down",
        tone: "danger",
        detail: `${u.reason || "not running"}; retrying in ${seconds(u.retryInMs)}`,
      };
    case "stopped":
      return { text: "stopped", tone: "", detail: null };
    case "idle":
      return { text: "not started", tone: "", detail: "starts when an agent connects" };
  }
}

/** "3 pinned · 1 changed (needs review) · 2 new"; removed tools are counted only when present. */
export function toolCountsText(c: McpServerView["tools"]): string {
  const parts = [`${c.pinned} pinned`];
  if (c.changed) parts.push(`${c.changed} changed (needs review)`);
  if (c.new) parts.push(`${c.new} new`);
  if (c.removed) parts.push(`${c.removed} removed`);
  if (!c.pinned && !c.changed && !c.new && !c.removed) return "no tools listed yet";
  return parts.join(" · ");
}

/** Whether a server has tools waiting for the person (changed or new). */
export function needsReview(c: McpServerView["tools"]): boolean {
  return c.changed > 0 || c.new > 0;
}

export const KIND_LABEL: Record<McpToolView["kind"], string> = {
  read_only: "read-only",
  destructive: "destructive",
  other: "other",
};

/** What happens to a call of this tool when no rule matches (the gateway's defaults). */
export function policyDefault(kind: McpToolView["kind"]): { text: string; warn: boolean } {
  switch (kind) {
    case "read_only":
      return { text: "allowed", warn: false };
    case "destructive":
      return { text: "asks you, with a warning (may delete or overwrite data)", warn: true };
    case "other":
      return { text: "asks you", warn: false };
  }
}

/** The short word of a tool's status badge (its title is [`STATUS_TEXT`]). */
export const STATUS_BADGE: Record<McpToolView["status"], string> = {
  pinned: "approved",
  changed: "changed",
  new: "new",
  removed: "removed",
};

export const STATUS_TEXT: Record<McpToolView["status"], string> = {
  pinned: "approved: agents with access can use it",
  changed: "changed since you approved it: held until you review it",
  new: "new: held until you approve it",
  removed: "no longer listed by the server",
};

/** JSON with sorted keys, indented: two schemas that differ only in key order read the same. */
export function stableJson(v: JsonValue | undefined): string {
  const sort = (x: JsonValue | undefined): JsonValue | undefined => {
    if (Array.isArray(x)) return x.map((i) => sort(i) ?? null);
    if (x !== null && typeof x === "object") {
      const out: { [k: string]: JsonValue } = {};
      for (const k of Object.keys(x).sort()) {
        const s = sort(x[k]);
        if (s !== undefined) out[k] = s;
      }
      return out;
    }
    return x;
  };
  const sorted = sort(v);
  return sorted === undefined || sorted === null ? "—" : JSON.stringify(sorted, null, 2);
}

export type FieldChange = { field: string; before: string; after: string; code: boolean };

const FIELDS: Array<{ key: keyof McpToolDefinition; label: string; code: boolean }> = [
  { key: "title", label: "Title", code: false },
  { key: "description", label: "Description", code: false },
  { key: "inputSchema", label: "Input schema", code: true },
  { key: "outputSchema", label: "Output schema", code: true },
  { key: "annotations", label: "Annotations", code: true },
];

/** Each part of the definition that differs between what was approved and what is listed now. */
export function toolDiff(pinned: McpToolDefinition | undefined, current: McpToolDefinition): FieldChange[] {
  const out: FieldChange[] = [];
  for (const f of FIELDS) {
    const text = (d: McpToolDefinition | undefined) => {
      const v = d?.[f.key];
      if (f.code) return stableJson(v as JsonValue | undefined);
      return typeof v === "string" && v !== "" ? v : "—";
    };
    const before = text(pinned);
    const after = text(current);
    if (before !== after) out.push({ field: f.label, before, after, code: f.code });
  }
  return out;
}

/** " (when you consented)" and the like: how the approved definition was approved. */
export function pinnedByText(by: string | undefined): string {
  switch (by) {
    case undefined:
      return "";
    case "consent":
      return " (when you consented to an agent using it)";
    case "cli":
      return " (from the CLI)";
    case "desktop":
      return " (in the app)";
    default:
      return ` (by ${by})`;
  }
}

/** The command that points Claude Code at this server through Gatehouse. */
export function claudeLine(s: Pick<McpServerView, "name" | "endpoint">): string {
  return `claude mcp add --transport http ${s.name} ${s.endpoint}`;
}

/** How the view shows one environment variable: never a secret (those are vault references). */
export function envText(e: McpEnvView): string {
  if (e.connection !== undefined) return `${e.key} from connection ${e.connection}`;
  return `${e.key}=${e.value ?? ""}`;
}

/** What the server runs or reaches, on one line. */
export function targetText(s: Pick<McpServerView, "transport" | "command" | "url" | "connection">): string {
  if (s.transport === "http") {
    return `${s.url ?? "?"}${s.connection ? ` (credential from connection ${s.connection})` : ""}`;
  }
  return s.command.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ");
}

export function removeConfirmBody(s: Pick<McpServerView, "name" | "endpoint">): string {
  return (
    `Agents will no longer reach ${s.endpoint}: Gatehouse stops the server and forgets its tools ` +
    `and their approvals. Rules mentioning it stay until you delete them. Add it again with ` +
    `\`gatehouse mcp add ${s.name} -- COMMAND\`.`
  );
}
