// The command names and argument keys are the contract with the shell (docs/desktop.md): each
// wrapper is called through Tauri's IPC mock and the invoke it makes is checked.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ipc, isIpcError, toIpcError } from "./ipc";

type Call = { cmd: string; args: unknown };
let calls: Call[] = [];
let answer: (cmd: string) => unknown = () => null;

beforeAll(async () => {
  // @tauri-apps/api/mocks installs its fake bridge on `window`; node has none, so lend it one.
  (globalThis as { window?: unknown }).window ??= globalThis;
  const { mockIPC } = await import("@tauri-apps/api/mocks");
  mockIPC((cmd, args) => {
    calls.push({ cmd, args });
    return answer(cmd);
  });
});

afterEach(() => {
  calls = [];
  answer = () => null;
});

describe("commands", () => {
  const decision = { approve: true, scopes: ["openid"], remember: "1h" as const };
  const query = { limit: 50, beforeId: 9 };
  const settings = {
    approvalTimeoutSecs: 60,
    notifyConsent: true,
    notifyAction: false,
    notifyGateway: true,
    listen: "127.0.0.1:7878",
    startAtLogin: false,
  };
  const connect = { name: "gh", provider: "github", clientId: "Iv1.x", scopes: ["repo"] };
  const key = { name: "stripe", kind: "api_key" as const, baseUrl: "https://api.stripe.com", secret: "sk_test" };
  it.each<[string, () => Promise<unknown>, string, unknown]>([
    ["status", () => ipc.status(), "status", {}],
    ["approvalsPending", () => ipc.approvalsPending(), "approvals_pending", {}],
    ["approvalsHistory", () => ipc.approvalsHistory(100), "approvals_history", { limit: 100 }],
    ["approvalGet", () => ipc.approvalGet("apr_1"), "approval_get", { id: "apr_1" }],
    ["approvalDecide", () => ipc.approvalDecide("apr_1", decision), "approval_decide", { id: "apr_1", decision }],
    ["agentsList", () => ipc.agentsList(), "agents_list", {}],
    ["agentRevoke", () => ipc.agentRevoke("c1"), "agent_revoke", { clientId: "c1" }],
    ["agentSuspend", () => ipc.agentSuspend("c1", true), "agent_suspend", { clientId: "c1", suspended: true }],
    ["grantRevoke", () => ipc.grantRevoke(7), "grant_revoke", { grantId: 7 }],
    ["eventsPage", () => ipc.eventsPage(query), "events_page", { query }],
    ["eventsExport", () => ipc.eventsExport(query, "csv"), "events_export", { query, format: "csv" }],
    ["eventKinds", () => ipc.eventKinds(), "event_kinds", {}],
    ["rulesList", () => ipc.rulesList(), "rules_list", {}],
    ["ruleDelete", () => ipc.ruleDelete(3), "rule_delete", { id: 3 }],
    ["pauseSet", () => ipc.pauseSet(true), "pause_set", { paused: true }],
    ["killSwitch", () => ipc.killSwitch(), "kill_switch", {}],
    ["settingsGet", () => ipc.settingsGet(), "settings_get", {}],
    ["settingsSet", () => ipc.settingsSet(settings), "settings_set", { settings }],
    ["connectionsList", () => ipc.connectionsList(), "connections_list", {}],
    ["connectionReconnect", () => ipc.connectionReconnect("gh"), "connection_reconnect", { name: "gh" }],
    ["connectionConnect", () => ipc.connectionConnect(connect), "connection_connect", { input: connect }],
    ["connectionAddKey", () => ipc.connectionAddKey(key), "connection_add_key", { input: key }],
    ["connectionRemove", () => ipc.connectionRemove("gh"), "connection_remove", { name: "gh" }],
    ["mcpServers", () => ipc.mcpServers(), "mcp_servers", {}],
    ["mcpTools", () => ipc.mcpTools("demo"), "mcp_tools", { name: "demo", relist: false }],
    ["mcpTools relist", () => ipc.mcpTools("demo", true), "mcp_tools", { name: "demo", relist: true }],
    ["mcpApproveTool", () => ipc.mcpApproveTool("demo", "echo"), "mcp_approve_tool", { name: "demo", tool: "echo" }],
    ["mcpApproveTool all", () => ipc.mcpApproveTool("demo", null), "mcp_approve_tool", { name: "demo", tool: null }],
    ["mcpRemove", () => ipc.mcpRemove("demo"), "mcp_remove", { name: "demo" }],
  ])("%s invokes %s", async (_, run, cmd, args) => {
    await run();
    expect(calls).toEqual([{ cmd, args }]);
  });

  it("a rejected command surfaces as {code, message}", async () => {
    answer = () => {
      throw { code: "already_decided", message: "decided in the tray" };
    };
    await expect(ipc.approvalDecide("apr_1", decision)).rejects.toEqual({
      code: "already_decided",
      message: "decided in the tray",
    });
  });
});

describe("toIpcError", () => {
  it.each<[string, unknown, { code: string; message: string }]>([
    ["typed", { code: "vault_sealed", message: "locked" }, { code: "vault_sealed", message: "locked" }],
    ["unknown code", { code: "weird", message: "m" }, { code: "internal", message: "unexpected error" }],
    ["Error", new Error("boom"), { code: "internal", message: "boom" }],
    ["string", "command not allowed", { code: "internal", message: "command not allowed" }],
    ["nothing", undefined, { code: "internal", message: "unexpected error" }],
  ])("%s", (_, e, want) => expect(toIpcError(e)).toEqual(want));

  it.each<[unknown, boolean]>([
    [{ code: "expired", message: "" }, true],
    [{ code: "nope", message: "" }, false],
    [null, false],
  ])("isIpcError(%j) = %s", (e, want) => expect(isIpcError(e)).toBe(want));
});
