import { describe, expect, it } from "vitest";
import { describeScope, isWriteScope } from "./scopes";

describe("describeScope", () => {
  it.each([
    ["openid", "Confirm who you are to the agent"],
    ["profile", "See your basic profile (name, picture)"],
    ["email", "See your email address"],
    ["offline_access", "Stay connected when you are away (refresh its access without asking again)"],
    ["mail:read", "Read your email"],
    ["mail:send", "Send email as you"],
    ["calendar:read", "See your calendar events"],
    ["calendar:write", "Create and change events in your calendar"],
    ["calendar:*", "See and change your calendar"],
    ["calendar:freebusy", "Use your calendar (freebusy)"],
    ["github:read", "Read from your github account through Gatehouse"],
    ["github:write", "Make changes in your github account through Gatehouse"],
    ["my-api-2:read", "Read from your my-api-2 account through Gatehouse"],
    ["mcp:demo", "Use every tool of the MCP server demo, and read its resources and prompts"],
    ["mcp:notes-2:delete_note", "Use the tool delete_note of the MCP server notes-2"],
    ["mcp:Demo", "Custom permission: mcp:Demo"],
    ["repo", "Custom permission: repo"],
    ["GitHub:read", "Custom permission: GitHub:read"],
    ["https://example.com/x", "Custom permission: https://example.com/x"],
    ["", "Custom permission: "],
  ])("%s → %s", (scope, want) => expect(describeScope(scope)).toBe(want));
});

describe("isWriteScope", () => {
  it.each([
    ["mail:send", true],
    ["github:write", true],
    ["calendar:*", true],
    ["offline_access", true],
    ["mail:read", false],
    ["openid", false],
  ])("%s → %s", (s, want) => expect(isWriteScope(s)).toBe(want));
});
