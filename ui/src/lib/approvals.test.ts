import { describe, expect, it } from "vitest";
import { headline, outcomeLine } from "./approvals";
import type { ApprovalOverview, ApprovalView } from "./types";

const base: ApprovalView = {
  id: "apr_1",
  kind: "consent",
  client_id: "c1",
  client_name: "Claude Code",
  verified: false,
  redirect_host: "127.0.0.1",
  scopes: ["openid", "mail:read"],
  resources: [],
  authorization_details: null,
  binding_message: null,
  via: null,
  user_code: null,
  summary: [],
  warnings: [],
  created_at: 0,
  expires_at: 60_000,
};
const over = (o: Partial<ApprovalOverview>): ApprovalOverview => ({
  ...base,
  status: "approved",
  channel: "window",
  decided_at: 4000,
  decided_after_ms: 4000,
  granted_scopes: null,
  remember: "once",
  ...o,
});

describe("headline", () => {
  it.each<[string, ApprovalView, string]>([
    ["consent", base, "Sign in with openid, mail:read"],
    ["summary wins", { ...base, kind: "action", summary: ["send an email to alex@contractor.example"] }, "send an email to alex@contractor.example"],
    ["binding message", { ...base, kind: "action", binding_message: "ABC-123" }, "ABC-123"],
    ["bare action", { ...base, kind: "action", scopes: ["mail:send"] }, "Act with mail:send"],
  ])("%s", (_, a, want) => expect(headline(a)).toBe(want));
});

describe("outcomeLine", () => {
  it.each<[string, ApprovalOverview, string]>([
    ["approved", over({}), "approved via window after 4 s"],
    ["denied from tray", over({ status: "denied", channel: "tray", decided_after_ms: 900 }), "denied via tray after 900 ms"],
    ["expired", over({ status: "expired", channel: "timeout", decided_after_ms: 120_000 }), "expired after 2 min"],
    ["pending", over({ status: "pending", channel: null, decided_after_ms: null }), "pending"],
  ])("%s", (_, a, want) => expect(outcomeLine(a)).toBe(want));
});
