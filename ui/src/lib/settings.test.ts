import { describe, expect, it } from "vitest";
import { changed, listenMoves, toSave } from "./settings";
import type { Settings } from "./types";

const base: Settings = {
  approvalTimeoutSecs: 120,
  notifyConsent: true,
  notifyAction: true,
  notifyGateway: false,
  listen: null,
  startAtLogin: false,
};

describe("toSave", () => {
  it.each<[string, Partial<Settings>, Partial<Settings>]>([
    ["unchanged", {}, { listen: null, approvalTimeoutSecs: 120 }],
    ["blank listen is the default", { listen: "   " }, { listen: null }],
    ["listen trimmed", { listen: " 127.0.0.1:9000 " }, { listen: "127.0.0.1:9000" }],
    ["timeout rounded", { approvalTimeoutSecs: 90.6 }, { approvalTimeoutSecs: 91 }],
  ])("%s", (_, over, want) => expect(toSave({ ...base, ...over })).toMatchObject(want));
});

describe("changed", () => {
  it.each<[string, Partial<Settings>, boolean]>([
    ["nothing", {}, false],
    ["blank listen equals the default", { listen: "" }, false],
    ["a notification kind", { notifyGateway: true }, true],
    ["the timeout", { approvalTimeoutSecs: 60 }, true],
    ["start at login", { startAtLogin: true }, true],
    ["listen", { listen: "127.0.0.1:9000" }, true],
  ])("%s", (_, over, want) => expect(changed(base, { ...base, ...over })).toBe(want));
});

describe("listenMoves", () => {
  it("only when the address differs", () => {
    expect(listenMoves(base, { ...base, listen: "" })).toBe(false);
    expect(listenMoves(base, { ...base, listen: "127.0.0.1:9000" })).toBe(true);
  });
});
