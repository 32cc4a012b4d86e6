//! Every IPC command and event of docs/desktop.md, typed once. Components call these, never
//! `invoke` with a string; a failed command rejects with an `IpcError` (`{code, message}`).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AddKeyInput,
  AgentOverview,
  AppStatus,
  ApprovalOverview,
  ApprovalStatus,
  ApprovalView,
  ConnectInput,
  ConnectionView,
  ConnectStarted,
  DecidedNotice,
  DecisionInput,
  Event,
  EventQuery,
  ExportFormat,
  ExportResult,
  IpcError,
  IpcErrorCode,
  KillSummary,
  McpServerView,
  McpToolView,
  RemoveResult,
  RevokeSummary,
  RuleRow,
  Settings,
} from "./types";

// A Record over the generated union: adding a code in Rust fails `npm run check` until it is here.
const KNOWN_CODES: Record<IpcErrorCode, true> = {
  not_found: true,
  already_decided: true,
  expired: true,
  invalid_input: true,
  conflict: true,
  unavailable: true,
  vault_sealed: true,
  internal: true,
};
const CODES: ReadonlySet<string> = new Set(Object.keys(KNOWN_CODES));

/** Whatever a rejected `invoke` carried, as an `IpcError` (unknown shapes become `internal`). */
export function toIpcError(e: unknown): IpcError {
  if (typeof e === "object" && e !== null && "code" in e && "message" in e) {
    const { code, message } = e as { code: unknown; message: unknown };
    if (typeof code === "string" && CODES.has(code)) {
      return { code: code as IpcErrorCode, message: String(message) };
    }
  }
  if (e instanceof Error) return { code: "internal", message: e.message };
  return { code: "internal", message: typeof e === "string" ? e : "unexpected error" };
}

export function isIpcError(e: unknown): e is IpcError {
  return (
    typeof e === "object" && e !== null && "code" in e && "message" in e && CODES.has(String((e as IpcError).code))
  );
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toIpcError(e);
  }
}

export const ipc = {
  status: () => call<AppStatus>("status"),
  approvalsPending: () => call<ApprovalView[]>("approvals_pending"),
  approvalsHistory: (limit: number) => call<ApprovalOverview[]>("approvals_history", { limit }),
  approvalGet: (id: string) => call<ApprovalOverview>("approval_get", { id }),
  approvalDecide: (id: string, decision: DecisionInput) => call<ApprovalStatus>("approval_decide", { id, decision }),
  agentsList: () => call<AgentOverview[]>("agents_list"),
  agentRevoke: (clientId: string) => call<RevokeSummary>("agent_revoke", { clientId }),
  agentSuspend: (clientId: string, suspended: boolean) =>
    call<AgentOverview>("agent_suspend", { clientId, suspended }),
  grantRevoke: (grantId: number) => call<number>("grant_revoke", { grantId }),
  eventsPage: (query: EventQuery) => call<Event[]>("events_page", { query }),
  eventsExport: (query: EventQuery, format: ExportFormat) =>
    call<ExportResult>("events_export", { query, format }),
  eventKinds: () => call<string[]>("event_kinds"),
  rulesList: () => call<RuleRow[]>("rules_list"),
  ruleDelete: (id: number) => call<RuleRow>("rule_delete", { id }),
  pauseSet: (paused: boolean) => call<boolean>("pause_set", { paused }),
  killSwitch: () => call<KillSummary>("kill_switch"),
  settingsGet: () => call<Settings>("settings_get"),
  settingsSet: (settings: Settings) => call<Settings>("settings_set", { settings }),
  connectionsList: () => call<ConnectionView[]>("connections_list"),
  connectionReconnect: (name: string) => call<ConnectStarted>("connection_reconnect", { name }),
  connectionConnect: (input: ConnectInput) => call<ConnectStarted>("connection_connect", { input }),
  connectionAddKey: (input: AddKeyInput) => call<ConnectionView>("connection_add_key", { input }),
  connectionRemove: (name: string) => call<RemoveResult>("connection_remove", { name }),
  mcpServers: () => call<McpServerView[]>("mcp_servers"),
  /** `relist`: ask the running server for its tools first (when the person opens it). */
  mcpTools: (name: string, relist = false) => call<McpToolView[]>("mcp_tools", { name, relist }),
  /** Approves `tool`'s current definition, or with `null` every new and changed tool of the server. */
  mcpApproveTool: (name: string, tool: string | null) => call<string[]>("mcp_approve_tool", { name, tool }),
  mcpRemove: (name: string) => call<string>("mcp_remove", { name }),
};

/** The shell's events; each `on*` resolves to the function that stops listening. */
export const events = {
  onEvent: (f: (e: Event) => void): Promise<UnlistenFn> =>
    listen<Event>("gatehouse://event", (m) => f(m.payload)),
  onApprovals: (f: (list: ApprovalView[]) => void): Promise<UnlistenFn> =>
    listen<ApprovalView[]>("gatehouse://approvals", (m) => f(m.payload)),
  onDecided: (f: (d: DecidedNotice) => void): Promise<UnlistenFn> =>
    listen<DecidedNotice>("gatehouse://decided", (m) => f(m.payload)),
  onStatus: (f: (s: AppStatus) => void): Promise<UnlistenFn> =>
    listen<AppStatus>("gatehouse://status", (m) => f(m.payload)),
  onConnections: (f: (list: ConnectionView[]) => void): Promise<UnlistenFn> =>
    listen<ConnectionView[]>("gatehouse://connections", (m) => f(m.payload)),
};

/** Runs `subscribe` (a set of `events.on*` calls) and returns a synchronous cleanup for `$effect`. */
export function subscribeAll(subs: Array<Promise<UnlistenFn>>): () => void {
  let stopped = false;
  const fns: UnlistenFn[] = [];
  for (const p of subs) {
    p.then((un) => (stopped ? un() : fns.push(un))).catch(() => {
      // Outside Tauri (vite dev in a browser) there is no event bridge; the views still render.
    });
  }
  return () => {
    stopped = true;
    for (const un of fns.splice(0)) un();
  };
}
