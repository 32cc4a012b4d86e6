import { describe, expect, it } from "vitest";
import { reconnectHint } from "./connections";

describe("reconnectHint", () => {
  it("nothing for an active connection", () => {
    expect(reconnectHint({ name: "github", kind: "oauth", status: "active" })).toBeNull();
  });
  it.each([
    ["api_key", "expired", ["gatehouse connections rm w", "gatehouse connections add w --url URL --api-key"]],
    ["bearer", "disconnected", ["gatehouse connections rm w", "gatehouse connections add w --url URL --bearer"]],
    ["oauth", "expired", ["gatehouse connections reconnect w"]],
    ["oauth", "disconnected", ["gatehouse connections reconnect w"]],
  ])("%s %s", (kind, status, commands) => {
    const hint = reconnectHint({ name: "w", kind, status });
    expect(hint?.commands).toEqual(commands);
    expect(hint?.text.length).toBeGreaterThan(0);
  });
});
