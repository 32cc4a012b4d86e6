//! What the Connections view decides about connections: which can be reconnected in one click,
//! what a disconnect did upstream, and the IPC input of the "Add connection" form (trimmed,
//! checked, empty fields left out so the shell applies its defaults).
import type { AddKeyInput, ConnectInput, ConnectionView, RemoveResult } from "./types";

/** The OAuth providers the core has presets for, then `custom` (its URLs typed in). */
export const PROVIDERS = [
  { id: "github", label: "GitHub" },
  { id: "google", label: "Google" },
  { id: "slack", label: "Slack" },
  { id: "microsoft", label: "Microsoft" },
  { id: "custom", label: "Custom provider" },
] as const;

export type ProviderId = (typeof PROVIDERS)[number]["id"];

/** An OAuth connection that is not active signs in again with its stored settings. */
export function canReconnect(c: Pick<ConnectionView, "kind" | "status">): boolean {
  return c.kind === "oauth" && c.status !== "active";
}

export type Reconnect = { text: string; commands: string[] };

/** What to tell the person about a connection that is not active (null when it is). */
export function reconnectHint(c: Pick<ConnectionView, "name" | "kind" | "status">): Reconnect | null {
  if (c.status === "active") return null;
  if (c.kind === "oauth") {
    return {
      text:
        c.status === "expired"
          ? "The provider no longer accepts its refresh token. Reconnect signs in to the account again in your browser."
          : "This account is disconnected. Reconnect signs in to it again in your browser.",
      commands: [],
    };
  }
  // A key cannot be refreshed: only a new one from its issuer helps.
  return {
    text:
      c.status === "expired"
        ? "Its credential expired. Disconnect it and add it again with a fresh one."
        : "Disconnect it and add it again.",
    commands: [],
  };
}

/** The confirmation shown before disconnecting. */
export function removeConfirmBody(c: Pick<ConnectionView, "name" | "kind">): string {
  const common = `Agents can no longer call ${c.name} through Gatehouse, and its secret is deleted from your keyring.`;
  return c.kind === "oauth"
    ? `${common} Gatehouse also asks the provider to revoke its tokens, where the provider supports it.`
    : `${common} The key itself stays valid at its issuer until you revoke it there.`;
}

/** What disconnecting did, in a sentence; `warn` when the person should act at the provider. */
export function removeOutcome(kind: string, r: RemoveResult): { text: string; warn: boolean } {
  const gone = `${r.connection} disconnected; its secret was deleted from your keyring${r.keyringEntryDeleted ? "" : " (there was none left)"}.`;
  if (kind !== "oauth") {
    return { text: `${gone} Revoke the key at its issuer if it may have leaked.`, warn: false };
  }
  switch (r.upstreamRevocation) {
    case "ok":
      return { text: `${gone} The provider revoked its tokens.`, warn: false };
    case "failed":
      return {
        text: `${gone} The provider did not confirm the revocation${r.revocationError ? ` (${r.revocationError})` : ""}: remove Gatehouse's access in your account settings there.`,
        warn: true,
      };
    case "not_supported":
      return {
        text: `${gone} The provider has no revocation endpoint: remove Gatehouse's access in your account settings there.`,
        warn: true,
      };
  }
}

/** The "Add connection" form, as typed. */
export type AddForm = {
  type: "oauth" | "api_key" | "bearer";
  name: string;
  label: string;
  provider: ProviderId;
  clientId: string;
  clientSecret: string;
  scopes: string;
  apiUrl: string;
  authorizationUrl: string;
  tokenUrl: string;
  revocationUrl: string;
  baseUrl: string;
  header: string;
  secret: string;
};

export function emptyForm(): AddForm {
  return {
    type: "oauth",
    name: "",
    label: "",
    provider: "github",
    clientId: "",
    clientSecret: "",
    scopes: "",
    apiUrl: "",
    authorizationUrl: "",
    tokenUrl: "",
    revocationUrl: "",
    baseUrl: "",
    header: "",
    secret: "",
  };
}

/** The form with every secret field emptied: what the view keeps once the form is submitted. */
export function withoutSecrets(f: AddForm): AddForm {
  return { ...f, clientSecret: "", secret: "" };
}

const NAME = /^[a-z0-9-]{1,40}$/;

type Built<T> = { input: T; error?: undefined } | { input?: undefined; error: string };

function checkName(name: string): string | null {
  if (!name) return "Give the connection a name (agents call /gateway/NAME/…).";
  if (!NAME.test(name)) return "The name must be 1 to 40 characters of a-z, 0-9 and -.";
  return null;
}

function opt(s: string): string | undefined {
  const t = s.trim();
  return t === "" ? undefined : t;
}

/** `connection_connect`'s input; scopes are split on spaces and commas. */
export function connectInput(f: AddForm): Built<ConnectInput> {
  const name = f.name.trim();
  const bad = checkName(name);
  if (bad) return { error: bad };
  const clientId = f.clientId.trim();
  if (!clientId) return { error: "Enter the client id of your OAuth app at the provider." };
  const input: ConnectInput = { name, provider: f.provider, clientId };
  const scopes = f.scopes.split(/[\s,]+/).filter((s) => s !== "");
  if (scopes.length > 0) input.scopes = scopes;
  const extras: Array<[keyof ConnectInput, string]> = [
    ["label", f.label],
    ["apiUrl", f.apiUrl],
  ];
  if (f.provider === "custom") {
    for (const [field, what] of [
      ["authorizationUrl", "authorization URL"],
      ["tokenUrl", "token URL"],
      ["apiUrl", "API URL"],
    ] as const) {
      if (!opt(f[field])) return { error: `A custom provider needs its ${what}.` };
    }
    extras.push(["authorizationUrl", f.authorizationUrl], ["tokenUrl", f.tokenUrl], ["revocationUrl", f.revocationUrl]);
  }
  for (const [k, v] of extras) {
    const t = opt(v);
    if (t !== undefined) (input as Record<string, unknown>)[k] = t;
  }
  // The secret is sent as typed (no trimming: it is not ours to edit), and only when given.
  if (f.clientSecret !== "") input.clientSecret = f.clientSecret;
  return { input };
}

/** `connection_add_key`'s input. */
export function keyInput(f: AddForm): Built<AddKeyInput> {
  if (f.type === "oauth") return { error: "not a key connection" };
  const name = f.name.trim();
  const bad = checkName(name);
  if (bad) return { error: bad };
  const baseUrl = f.baseUrl.trim();
  if (!/^https?:\/\/\S+$/.test(baseUrl)) return { error: "Enter the API's base URL (https://…)." };
  if (f.secret === "") return { error: f.type === "bearer" ? "Paste the token." : "Paste the API key." };
  const input: AddKeyInput = { name, kind: f.type, baseUrl, secret: f.secret };
  const label = opt(f.label);
  if (label !== undefined) input.label = label;
  const header = f.type === "api_key" ? opt(f.header) : undefined;
  if (header !== undefined) input.header = header;
  return { input };
}

/** How long the view waits for a sign-in started from it (the core's flows expire after 10 min). */
export const SIGN_IN_WAIT_MS = 10 * 60 * 1000;

export type SignIn = { name: string; authorizationUrl: string; browserOpened: boolean; startedAt: number };

/**
 * Sign-ins still waiting once a new list arrives: one whose connection is now active is done
 * (returned in `done`); one older than the flows live is dropped. A list without the connection
 * active says nothing about a failure (another flow may have finished), so the rest keep waiting.
 */
export function settleSignIns(
  waiting: SignIn[],
  list: Pick<ConnectionView, "name" | "status">[],
  now: number,
): { waiting: SignIn[]; done: string[] } {
  const active = new Set(list.filter((c) => c.status === "active").map((c) => c.name));
  const done = waiting.filter((s) => active.has(s.name)).map((s) => s.name);
  return {
    waiting: waiting.filter((s) => !active.has(s.name) && now - s.startedAt < SIGN_IN_WAIT_MS),
    done,
  };
}
