import { describe, expect, it } from "vitest";
import { gatewayCall, humanize, mcpCall, renderDetails } from "./details";
import type { JsonValue } from "./types";

describe("humanize", () => {
  it.each([
    ["message_send", "Message send"],
    ["recipientDomain", "Recipient domain"],
    ["url", "Url"],
    ["", ""],
  ])("%s → %s", (k, want) => expect(humanize(k)).toBe(want));
});

describe("renderDetails", () => {
  it.each<[string, JsonValue | null, ReturnType<typeof renderDetails>]>([
    ["none", null, []],
    [
      "message send",
      [{ type: "message_send", recipients: ["alex@contractor.example"], subject: "Q3", attachments: 0, urgent: false }],
      [
        {
          title: "Message send",
          rows: [
            { key: "Recipients", value: "alex@contractor.example" },
            { key: "Subject", value: "Q3" },
            { key: "Attachments", value: "0" },
            { key: "Urgent", value: "no" },
          ],
        },
      ],
    ],
    [
      "nested and lists of objects",
      [{ type: "payment", amount: { value: 12.5, currency: "EUR" }, items: [{ sku: "a" }, { sku: "b" }], note: null }],
      [
        {
          title: "Payment",
          rows: [
            { key: "Amount › Value", value: "12.5" },
            { key: "Amount › Currency", value: "EUR" },
            { key: "Items 1 › Sku", value: "a" },
            { key: "Items 2 › Sku", value: "b" },
            { key: "Note", value: "—" },
          ],
        },
      ],
    ],
    ["a single object, no type", { locations: [] }, [{ title: "Detail", rows: [{ key: "Locations", value: "none" }] }]],
    ["a scalar", ["x"], [{ title: "Detail", rows: [{ key: "Value", value: "x" }] }]],
  ])("%s", (_, input, want) => expect(renderDetails(input)).toEqual(want));
});

describe("gatewayCall", () => {
  it.each<[string, JsonValue | null, ReturnType<typeof gatewayCall>]>([
    ["none", null, null],
    [
      "with body",
      [{ type: "api_request", method: "POST", url: "https://api.github.com/repos", body: "application/json, 42 B: {\"name\":\"x\"}" }],
      { method: "POST", url: "https://api.github.com/repos", body: "application/json, 42 B: {\"name\":\"x\"}" },
    ],
    ["without body", [{ type: "api_request", method: "DELETE", url: "https://x/y" }], { method: "DELETE", url: "https://x/y", body: null }],
    ["other type", [{ type: "message_send", method: "POST", url: "u" }], null],
    ["malformed", [{ type: "api_request", method: 1, url: "u" }], null],
  ])("%s", (_, input, want) => expect(gatewayCall(input)).toEqual(want));
});

describe("mcpCall", () => {
  const detail = {
    type: "mcp_tool_call",
    server: "notes",
    tool: "delete_note",
    tool_kind: "destructive",
    arguments: { id: 42, title: "Groceries", token: "[redacted]", tags: ["a", "b"] },
    arguments_hash: "sha256:abc",
    locations: ["http://127.0.0.1:8737/mcp/notes/tools/delete_note?args=sha256:abc"],
  };
  it("reads the call as key/value rows", () =>
    expect(mcpCall([detail])).toEqual({
      server: "notes",
      tool: "delete_note",
      kind: "destructive",
      args: [
        { key: "id", value: "42" },
        { key: "title", value: "Groceries" },
        { key: "token", value: "[redacted]" },
        { key: "tags", value: '["a","b"]' },
      ],
      argumentsHash: "sha256:abc",
    }));
  it("no arguments, no kind", () =>
    expect(mcpCall({ type: "mcp_tool_call", server: "s", tool: "t" })).toEqual({
      server: "s",
      tool: "t",
      kind: "other",
      args: [],
      argumentsHash: null,
    }));
  it.each([null, undefined, [], [{ type: "api_request", method: "GET", url: "x" }], [{ type: "mcp_tool_call", server: 1 }]])(
    "%j is not one",
    (d) => expect(mcpCall(d)).toBeNull(),
  );
});
