//! The IPC types the UI speaks. TEMPORARY mirror of what the shell serializes today (core types
//! such as ApprovalView, Event, AgentOverview keep their snake_case serde names; the shell's own
//! DTOs such as AppStatus are camelCase) until the ts-rs bindings land in ./bindings; then every
//! type here becomes a re-export of its binding.

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
  vaultReason?: string;
};

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired";

export type ApprovalView = {
  id: string;
  kind: string;
  client_id: string;
  client_name: string | null;
  verified: boolean;
  redirect_host: string | null;
  scopes: Array<string>;
  resources: Array<string>;
  authorization_details: JsonValue | null;
  binding_message: string | null;
  via: string | null;
  user_code: string | null;
  summary: Array<string>;
  warnings: Array<string>;
  created_at: number;
  expires_at: number;
};

export type ApprovalOverview = ApprovalView & {
  status: ApprovalStatus;
  channel: string | null;
  decided_at: number | null;
  decided_after_ms: number | null;
  granted_scopes: Array<string> | null;
  remember: string | null;
};

export type Remember = "once" | "1h" | "8h" | "session" | "always";

export type DecisionInput = {
  approve: boolean;
  scopes?: Array<string>;
  remember: Remember;
  uses?: number;
};

export type Grant = {
  id: number;
  client_id: string;
  scopes: Array<string>;
  resources: Array<string>;
  approval_id: string | null;
  consent_id: number | null;
  created_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  authorization_details: JsonValue | null;
};

export type Token = {
  id: string;
  kind: "access" | "refresh";
  grant_id: number;
  client_id: string;
  scopes: Array<string>;
  audience: Array<string>;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  uses_left: number | null;
  authorization_details: JsonValue | null;
};

export type AgentOverview = {
  client_id: string;
  client_name: string | null;
  auth_method: string;
  application_type: string;
  redirect_uris: Array<string>;
  grant_types: Array<string>;
  response_types: Array<string>;
  scope: string | null;
  metadata: JsonValue;
  created_at: number;
  last_seen_at: number | null;
  revoked_at: number | null;
  suspended_at: number | null;
  grants: Array<Grant>;
  live_tokens: Array<Token>;
};

export type RevokeSummary = {
  grants: number;
  tokens: number;
  remembered_consents: number;
  pending_approvals_denied: number;
};

export type Event = {
  id: number;
  ts: number;
  kind: string;
  outcome: string;
  client_id: string | null;
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

export type RuleRow = {
  id: number;
  agent: string;
  action: string;
  resource: string;
  effect: string;
  lifetime: string;
  session_id: string | null;
  created_at: number;
  expires_at: number | null;
  created_by: string;
  hits: number;
  last_hit_at: number | null;
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

export type ConnectionRow = {
  id: number;
  name: string;
  kind: string;
  provider: string;
  label: string;
  base_url: string;
  header_name: string | null;
  scopes: Array<string>;
  status: string;
  keyring_ref: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
};

export type DecidedNotice = { id: string; status: ApprovalStatus; channel: string };
