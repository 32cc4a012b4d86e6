import { describe, expect, it } from "vitest";
import { agentName, byStanding, isSuspended, liveGrants, nextExpiry } from "./agents";
import type { AgentOverview, Grant, Token } from "./types";

const grant = (id: number, created_at: number, revoked_at: number | null = null): Grant => ({
  id,
  client_id: "c1",
  scopes: ["s"],
  resources: [],
  approval_id: null,
  consent_id: null,
  created_at,
  revoked_at,
  revoked_reason: null,
  authorization_details: null,
});
const token = (grant_id: number, expires_at: number): Token => ({
  id: `t${grant_id}-${expires_at}`,
  kind: "access",
  grant_id,
  client_id: "c1",
  scopes: ["s"],
  audience: [],
  created_at: 0,
  expires_at,
  rotated_at: null,
  revoked_at: null,
  last_used_at: null,
  uses_left: null,
  authorization_details: null,
});
const agent = (grants: Grant[], live_tokens: Token[], client_name: string | null = "Claude Code"): AgentOverview => ({
  client_id: "c1",
  client_name,
  auth_method: "none",
  application_type: "native",
  redirect_uris: [],
  grant_types: [],
  response_types: [],
  scope: null,
  metadata: {},
  created_at: 0,
  last_seen_at: null,
  revoked_at: null,
  suspended_at: null,
  grants,
  live_tokens,
});

describe("liveGrants", () => {
  it("drops revoked grants, newest first, tokens counted per grant with the latest expiry", () => {
    const a = agent([grant(1, 100), grant(2, 200, 250), grant(3, 300)], [token(1, 1000), token(1, 5000), token(3, 2000)]);
    expect(liveGrants(a).map((l) => [l.grant.id, l.tokens, l.expiresAt])).toEqual([
      [3, 1, 2000],
      [1, 2, 5000],
    ]);
  });
  it("a grant without live tokens has no expiry", () => {
    expect(liveGrants(agent([grant(1, 1)], []))[0]).toMatchObject({ tokens: 0, expiresAt: null });
  });
});

describe("nextExpiry", () => {
  it.each<[Token[], number | null]>([
    [[], null],
    [[token(1, 900), token(2, 300), token(1, 600)], 300],
  ])("%#", (tokens, want) => expect(nextExpiry(agent([], tokens))).toBe(want));
});

describe("agentName", () => {
  it("prefers the name", () => expect(agentName(agent([], []))).toBe("Claude Code"));
  it("falls back to the client id", () => expect(agentName(agent([], [], null))).toBe("c1"));
});

describe("isSuspended", () => {
  it.each<[number | null, boolean]>([
    [null, false],
    [1_700_000_000_000, true],
  ])("suspended_at %s → %s", (suspended_at, want) => expect(isSuspended({ suspended_at })).toBe(want));
});

describe("byStanding", () => {
  it("active by last seen, then suspended, then revoked", () => {
    const mk = (client_id: string, over: Partial<AgentOverview>) => ({ ...agent([], []), client_id, ...over });
    const list = [
      mk("revoked", { revoked_at: 5, last_seen_at: 900 }),
      mk("old", { last_seen_at: 100 }),
      mk("suspended", { suspended_at: 7, last_seen_at: 800 }),
      mk("recent", { last_seen_at: 700 }),
      mk("never-seen", { created_at: 50 }),
    ];
    expect(byStanding(list).map((a) => a.client_id)).toEqual(["recent", "old", "never-seen", "suspended", "revoked"]);
  });
});
