//! The IPC types the UI speaks. TEMPORARY mirror of docs/desktop.md until the ts-rs bindings
//! land in ./bindings; then every type here becomes a re-export of its binding.

export type JsonValue =
  | number
  | string
  | boolean
  | Array<JsonValue>
  | { [key in string]?: JsonValue }
  | null;

export type IpcErrorCode =
  | "not_found"
  | "already_decided"
  | "expired"
  | "invalid_input"
  | "conflict"
  | "unavailable"
  | "vault_sealed"
  | "internal";

export type IpcError = { code: IpcErrorCode; message: string };

export type AppStatus = {
  issuer: string;
  dataDir: string;
  paused: boolean;
  pendingCount: number;
  vaultSealed: boolean;
  vaultReason: string | null;
};

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired";

export type ApprovalView = {
  id: string;
  kind: string;
  clientId: string;
  clientName: string | null;
  verified: boolean;
  redirectHost: string | null;
  scopes: Array<string>;
  resources: Array<string>;
  authorizationDetails: JsonValue | null;
  bindingMessage: string | null;
  via: string | null;
  userCode: string | null;
  summary: Array<string>;
  warnings: Array<string>;
  createdAt: number;
  expiresAt: number;
};

export type ApprovalOverview = ApprovalView & {
  status: ApprovalStatus;
  channel: string | null;
  decidedAt: number | null;
  decidedAfterMs: number | null;
  grantedScopes: Array<string> | null;
  remember: string | null;
};

export type Remember = "once" | "1h" | "8h" | "session" | "always";

export type Decision = {
  approve: boolean;
  scopes?: Array<string>;
  remember: Remember;
  uses?: number;
};

export type Grant = {
  id: number;
  clientId: string;
  scopes: Array<string>;
  resources: Array<string>;
  createdAt: number;
  revokedAt: number | null;
  expiresAt: number | null;
};

export type TokenView = {
  id: string;
  kind: string;
  grantId: number;
  scopes: Array<string>;
  expiresAt: number;
};

export type AgentOverview = {
  clientId: string;
  clientName: string | null;
  verified: boolean;
  suspended: boolean;
  createdAt: number;
  lastSeenAt: number | null;
  revokedAt: number | null;
  grants: Array<Grant>;
  liveTokens: Array<TokenView>;
};

export type RevokeSummary = {
  grants: number;
  tokens: number;
  rememberedConsents: number;
  pendingApprovalsDenied: number;
};

export type Event = {
  id: number;
  ts: number;
  kind: string;
  outcome: string;
  clientId: string | null;
  detail: JsonValue;
  hash: string;
};

export type EventQuery = {
  clientId?: string;
  kinds?: Array<string>;
  outcome?: string;
  since?: number;
  until?: number;
  text?: string;
  beforeId?: number;
  limit: number;
};

export type ExportFormat = "jsonl" | "csv";
export type ExportResult = { path: string; count: number };

export type RuleView = {
  id: number;
  agent: string;
  action: string;
  resource: string;
  effect: string;
  lifetime: string;
  createdAt: number;
  expiresAt: number | null;
  createdBy: string;
  hits: number;
  lastHitAt: number | null;
};

export type KillSummary = { agents: number; grants: number; tokens: number; pendingDenied: number };

export type Settings = {
  approvalTimeoutSecs: number;
  notifyConsent: boolean;
  notifyAction: boolean;
  notifyGateway: boolean;
  listen: string;
  startAtLogin: boolean;
};

export type ConnectionView = {
  name: string;
  kind: string;
  provider: string;
  label: string;
  baseUrl: string;
  scopes: Array<string>;
  status: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
};

export type DecidedNotice = { id: string; status: ApprovalStatus; channel: string | null };
