import { describe, expect, it } from "vitest";
import { headline, outcomeLine } from "./approvals";
import type { ApprovalOverview, ApprovalView } from "./types";

const base: ApprovalView = {
  id: "apr_1",
  kind: "consent",
  clientId: "c1",
  clientName: "Claude Code",
  verified: false,
  redirectHost: "127.0.0.1",
  scopes: ["openid", "mail:read"],
  resources: [],
  authorizationDetails: null,
  bindingMessage: null,
  via: null,
  userCode: null,
  summary: [],
  warnings: [],
  createdAt: 0,
  expiresAt: 60_000,
};
const over = (o: Partial<ApprovalOverview>): ApprovalOverview => ({
  ...base,
  status: "approved",
  channel: "window",
  decidedAt: 4000,
  decidedAfterMs: 4000,
  grantedScopes: null,
  remember: "once",
  ...o,
});

describe("headline", () => {
  it.each<[string, ApprovalView, string]>([
    ["consent", base, "Sign in with openid, mail:read"],
    ["summary wins", { ...base, kind: "action", summary: ["send an email to alex@contractor.example"] }, "send an email to alex@contractor.example"],
    ["binding message", { ...base, kind: "action", bindingMessage: "ABC-123" }, "ABC-123"],
    ["bare action", { ...base, kind: "action", scopes: ["mail:send"] }, "Act with mail:send"],
  ])("%s", (_, a, want) => expect(headline(a)).toBe(want));
});

describe("outcomeLine", () => {
  it.each<[string, ApprovalOverview, string]>([
    ["approved", over({}), "approved via window after 4 s"],
    ["denied from tray", over({ status: "denied", channel: "tray", decidedAfterMs: 900 }), "denied via tray after 900 ms"],
    ["expired", over({ status: "expired", channel: "timeout", decidedAfterMs: 120_000 }), "expired after 2 min"],
    ["pending", over({ status: "pending", channel: null, decidedAfterMs: null }), "pending"],
  ])("%s", (_, a, want) => expect(outcomeLine(a)).toBe(want));
});
