import { describe, expect, it } from "vitest";
import { actionLead, approveDecision, canApprove, keyAction, outcomeOfError, withCover } from "./consent";
import type { DecisionInput, IpcErrorCode } from "./types";

describe("approveDecision", () => {
  it("keeps the asked order and only ticked scopes", () => {
    expect(approveDecision(["openid", "mail:read", "mail:send"], new Set(["mail:send", "openid"]), "1h")).toEqual({
      approve: true,
      scopes: ["openid", "mail:send"],
      remember: "1h",
    });
  });
  it("ignores ticked scopes that were not asked", () => {
    expect(approveDecision(["a"], new Set(["a", "b"]), "once").scopes).toEqual(["a"]);
  });
});

describe("canApprove", () => {
  it.each<[string[], string[], boolean]>([
    [["a", "b"], ["a"], true],
    [["a", "b"], [], false],
    [[], [], true],
  ])("asked %j ticked %j → %s", (asked, ticked, want) => expect(canApprove(asked, new Set(ticked))).toBe(want));
});

describe("outcomeOfError", () => {
  it.each<[IpcErrorCode, string]>([
    ["expired", "expired"],
    ["already_decided", "settled"],
    ["not_found", "expired"],
    ["unavailable", "error"],
    ["internal", "error"],
  ])("%s → %s", (code, status) => expect(outcomeOfError({ code, message: "m" }).status).toBe(status));
});

describe("keyAction", () => {
  it.each<[string, string, string | null, string]>([
    ["Escape", "BUTTON", "approve", "deny"],
    ["Escape", "INPUT", null, "deny"],
    ["Enter", "BUTTON", "approve", "block"],
    ["Enter", "INPUT", null, "block"],
    ["Enter", "BODY", null, "block"],
    ["Enter", "BUTTON", "deny", "default"],
    [" ", "INPUT", null, "default"],
    ["Tab", "BUTTON", "approve", "default"],
  ])("%s on %s[%s] → %s", (key, tagName, testId, want) => expect(keyAction(key, { tagName, testId })).toBe(want));
});

describe("actionLead", () => {
  it.each<[string | null, string]>([
    ["gateway", "wants to make this request through Gatehouse"],
    ["device", "wants to act for you (it showed you a code)"],
    ["ciba", "wants to act for you"],
    [null, "wants to act for you"],
  ])("%s → %s", (via, want) => expect(actionLead(via)).toBe(want));
});

describe("withCover", () => {
  const base: DecisionInput = { approve: true, scopes: [], remember: "1h" };
  it.each<[string, DecisionInput, boolean, "exact" | "any", boolean | undefined]>([
    ["any arguments, remembered", base, true, "any", true],
    ["exact arguments", base, true, "exact", undefined],
    ["once never broadens", { ...base, remember: "once" }, true, "any", undefined],
    ["not offered", base, false, "any", undefined],
    ["a denial stays a denial", { approve: false, remember: "1h" }, true, "any", undefined],
  ])("%s", (_, d, offered, cover, want) => expect(withCover(d, offered, cover).broader).toBe(want));
});
