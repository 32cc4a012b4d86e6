import { describe, expect, it } from "vitest";
import { parseRoute, type Route } from "./route";

describe("parseRoute", () => {
  it.each<[string, Route]>([
    ["", { kind: "main", view: "approvals" }],
    ["#/", { kind: "main", view: "approvals" }],
    ["#/activity", { kind: "main", view: "activity" }],
    ["#/settings", { kind: "main", view: "settings" }],
    ["#/mcp", { kind: "main", view: "mcp" }],
    ["#/nope", { kind: "main", view: "approvals" }],
    ["#/consent/apr_123", { kind: "consent", id: "apr_123" }],
    ["#/consent/apr%5Fx", { kind: "consent", id: "apr_x" }],
    ["#/consent/", { kind: "main", view: "approvals" }],
  ])("%s", (hash, want) => expect(parseRoute(hash)).toEqual(want));
});
