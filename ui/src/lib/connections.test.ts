import { describe, expect, it } from "vitest";
import {
  canReconnect,
  connectInput,
  emptyForm,
  keyInput,
  reconnectHint,
  removeConfirmBody,
  removeOutcome,
  settleSignIns,
  SIGN_IN_WAIT_MS,
  withoutSecrets,
  type AddForm,
} from "./connections";

const form = (f: Partial<AddForm>): AddForm => ({ ...emptyForm(), ...f });

describe("reconnect", () => {
  it.each([
    ["oauth", "expired", true],
    ["oauth", "disconnected", true],
    ["oauth", "active", false],
    ["api_key", "expired", false],
    ["bearer", "active", false],
  ])("%s %s -> %s", (kind, status, want) => expect(canReconnect({ kind, status })).toBe(want));

  it("no hint for an active connection", () => {
    expect(reconnectHint({ name: "github", kind: "oauth", status: "active" })).toBeNull();
  });
  it.each([
    ["oauth", "expired", /Reconnect/],
    ["api_key", "expired", /add it again with a fresh one/],
    ["bearer", "disconnected", /add it again/],
  ])("%s %s hint", (kind, status, text) => {
    expect(reconnectHint({ name: "w", kind, status })?.text).toMatch(text);
  });
});

describe("disconnect", () => {
  it("says a key stays valid at its issuer, an OAuth one is revoked", () => {
    expect(removeConfirmBody({ name: "k", kind: "api_key" })).toMatch(/stays valid at its issuer/);
    expect(removeConfirmBody({ name: "g", kind: "oauth" })).toMatch(/revoke its tokens/);
  });
  it.each([
    ["oauth", "ok", undefined, /provider revoked its tokens/, false],
    ["oauth", "failed", "access token: 503", /did not confirm.*access token: 503/, true],
    ["oauth", "not_supported", undefined, /no revocation endpoint/, true],
    ["api_key", "not_supported", undefined, /Revoke the key at its issuer/, false],
  ] as const)("%s %s", (kind, upstreamRevocation, revocationError, text, warn) => {
    const out = removeOutcome(kind, {
      connection: "c",
      upstreamRevocation,
      revocationError,
      keyringEntryDeleted: true,
    });
    expect(out.text).toMatch(text);
    expect(out.text).toMatch(/^c disconnected/);
    expect(out.warn).toBe(warn);
  });
  it("mentions a keyring entry that was already gone", () => {
    const out = removeOutcome("bearer", { connection: "c", upstreamRevocation: "not_supported", keyringEntryDeleted: false });
    expect(out.text).toMatch(/there was none left/);
  });
});

describe("connectInput", () => {
  it("a preset needs a name and a client id; empty fields are left out", () => {
    expect(connectInput(form({ clientId: "x" })).error).toMatch(/name/);
    expect(connectInput(form({ name: "Bad Name", clientId: "x" })).error).toMatch(/a-z/);
    expect(connectInput(form({ name: "gh" })).error).toMatch(/client id/);
    expect(connectInput(form({ name: " gh ", clientId: " Iv1.x ", label: "  " }))).toEqual({
      input: { name: "gh", provider: "github", clientId: "Iv1.x" },
    });
  });
  it("splits scopes, keeps the secret as typed", () => {
    const { input } = connectInput(
      form({ name: "g", provider: "google", clientId: "id", scopes: "openid, email  profile", clientSecret: " s " }),
    );
    expect(input).toEqual({
      name: "g",
      provider: "google",
      clientId: "id",
      scopes: ["openid", "email", "profile"],
      clientSecret: " s ",
    });
  });
  it("a custom provider needs its URLs", () => {
    const base = { name: "c", provider: "custom" as const, clientId: "id" };
    expect(connectInput(form(base)).error).toMatch(/authorization URL/);
    expect(connectInput(form({ ...base, authorizationUrl: "https://p/a" })).error).toMatch(/token URL/);
    expect(connectInput(form({ ...base, authorizationUrl: "https://p/a", tokenUrl: "https://p/t" })).error).toMatch(
      /API URL/,
    );
    expect(
      connectInput(
        form({ ...base, authorizationUrl: "https://p/a", tokenUrl: "https://p/t", apiUrl: "https://api.p", label: "me" }),
      ).input,
    ).toEqual({
      ...base,
      label: "me",
      apiUrl: "https://api.p",
      authorizationUrl: "https://p/a",
      tokenUrl: "https://p/t",
    });
  });
  it("custom URLs are not sent for a preset", () => {
    const { input } = connectInput(form({ name: "s", provider: "slack", clientId: "id", tokenUrl: "https://x/t" }));
    expect(input).toEqual({ name: "s", provider: "slack", clientId: "id" });
  });
});

describe("keyInput", () => {
  it("checks the name, URL and secret", () => {
    expect(keyInput(form({ type: "api_key", baseUrl: "https://a", secret: "s" })).error).toMatch(/name/);
    expect(keyInput(form({ type: "api_key", name: "k", baseUrl: "ftp://a", secret: "s" })).error).toMatch(/base URL/);
    expect(keyInput(form({ type: "bearer", name: "k", baseUrl: "https://a" })).error).toMatch(/token/);
    expect(keyInput(form({ type: "oauth", name: "k" })).error).toBeDefined();
  });
  it("sends the header for an API key only", () => {
    const f = { name: "k", baseUrl: " https://api.example ", secret: "sk", header: "Authorization-Key", label: "w" };
    expect(keyInput(form({ ...f, type: "api_key" })).input).toEqual({
      name: "k",
      kind: "api_key",
      baseUrl: "https://api.example",
      secret: "sk",
      header: "Authorization-Key",
      label: "w",
    });
    expect(keyInput(form({ ...f, type: "bearer" })).input).toEqual({
      name: "k",
      kind: "bearer",
      baseUrl: "https://api.example",
      secret: "sk",
      label: "w",
    });
  });
  it("the form keeps no secret after submit", () => {
    const kept = withoutSecrets(form({ name: "k", secret: "sk", clientSecret: "cs" }));
    expect(kept.secret).toBe("");
    expect(kept.clientSecret).toBe("");
    expect(kept.name).toBe("k");
  });
});

describe("settleSignIns", () => {
  const s = (name: string, startedAt = 0) => ({ name, authorizationUrl: "https://p/a", browserOpened: true, startedAt });
  it("an active connection ends its sign-in; others keep waiting", () => {
    const r = settleSignIns([s("a"), s("b")], [{ name: "a", status: "active" }, { name: "b", status: "expired" }], 1000);
    expect(r.done).toEqual(["a"]);
    expect(r.waiting.map((w) => w.name)).toEqual(["b"]);
  });
  it("a sign-in older than the flows live is dropped", () => {
    const r = settleSignIns([s("a", 0)], [], SIGN_IN_WAIT_MS);
    expect(r).toEqual({ waiting: [], done: [] });
  });
});
