//! RFC 9396 `authorization_details` as people read them: a titled key/value list per detail
//! (never raw JSON), and the gateway call (method, URL, body summary) when it is one.
import type { JsonValue } from "./types";

export type DetailRow = { key: string; value: string };
export type DetailBlock = { title: string; rows: DetailRow[] };

/** `message_send` → "Message send". */
export function humanize(key: string): string {
  const spaced = key.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").trim().toLowerCase();
  return spaced ? spaced[0]!.toUpperCase() + spaced.slice(1) : key;
}

function scalar(v: JsonValue): string {
  if (v === null) return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

function flatten(prefix: string, v: JsonValue, out: DetailRow[]): void {
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== "object")) {
      out.push({ key: prefix, value: v.length ? v.map(scalar).join(", ") : "none" });
    } else {
      v.forEach((x, i) => flatten(`${prefix} ${i + 1}`, x, out));
    }
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      flatten(prefix ? `${prefix} › ${humanize(k)}` : humanize(k), x, out);
    }
  } else {
    out.push({ key: prefix, value: scalar(v) });
  }
}

/** One block per detail: its `type` as the title, every other field flattened to rows. */
export function renderDetails(details: JsonValue | null | undefined): DetailBlock[] {
  if (details === null || details === undefined) return [];
  const items = Array.isArray(details) ? details : [details];
  return items.map((item) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      const rows: DetailRow[] = [];
      flatten("Value", item, rows);
      return { title: "Detail", rows };
    }
    const { type, ...rest } = item;
    const rows: DetailRow[] = [];
    flatten("", rest as JsonValue, rows);
    return { title: typeof type === "string" ? humanize(type) : "Detail", rows };
  });
}

export type GatewayCall = { method: string; url: string; body: string | null };

/** The gateway call an `api_request` detail describes, if that is what the approval is. */
export function gatewayCall(details: JsonValue | null | undefined): GatewayCall | null {
  const items = Array.isArray(details) ? details : details ? [details] : [];
  for (const d of items) {
    if (typeof d !== "object" || d === null || Array.isArray(d)) continue;
    if (d["type"] !== "api_request") continue;
    const method = d["method"];
    const url = d["url"];
    if (typeof method !== "string" || typeof url !== "string") continue;
    const body = d["body"];
    return { method, url, body: typeof body === "string" ? body : null };
  }
  return null;
}

export type McpCall = {
  server: string;
  tool: string;
  /** `read_only`, `destructive` or `other` (the server's annotations). */
  kind: string;
  /** One row per top-level argument, values as the core redacted and truncated them. */
  args: DetailRow[];
  argumentsHash: string | null;
};

function argValue(v: JsonValue): string {
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** The MCP tool call an `mcp_tool_call` detail describes, if that is what the approval is. */
export function mcpCall(details: JsonValue | null | undefined): McpCall | null {
  const items = Array.isArray(details) ? details : details ? [details] : [];
  for (const d of items) {
    if (typeof d !== "object" || d === null || Array.isArray(d)) continue;
    if (d["type"] !== "mcp_tool_call") continue;
    const server = d["server"];
    const tool = d["tool"];
    if (typeof server !== "string" || typeof tool !== "string") continue;
    const a = d["arguments"];
    const args =
      typeof a === "object" && a !== null && !Array.isArray(a)
        ? Object.entries(a).flatMap(([key, v]) => (v === undefined ? [] : [{ key, value: argValue(v) }]))
        : a === null || a === undefined
          ? []
          : [{ key: "arguments", value: argValue(a) }];
    const kind = d["tool_kind"];
    const hash = d["arguments_hash"];
    return {
      server,
      tool,
      kind: typeof kind === "string" ? kind : "other",
      args,
      argumentsHash: typeof hash === "string" ? hash : null,
    };
  }
  return null;
}
