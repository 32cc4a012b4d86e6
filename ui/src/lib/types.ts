//! The IPC types the UI speaks. They come from Rust: `./bindings` is generated with ts-rs
//! (`cargo test -p gatehouse-desktop export_bindings`) from the core's types (snake_case, as serde
//! writes them) and the shell's DTOs (camelCase). This module re-exports them and names the few
//! derived types the views use.
//!
//! TEMPORARY (until the shell exports them; each then becomes a re-export): the payloads of
//! commands whose Rust types are not in `./bindings` yet, typed from docs/desktop.md.

export type {
  AgentOverview,
  AppStatus,
  ApprovalOverview,
  ApprovalStatus,
  ApprovalView,
  DecidedNotice,
  DecisionInput,
  Event,
  Grant,
  IpcError,
  IpcErrorCode,
  JsonValue,
  RevokeSummary,
  RuleRow,
  Token,
  TokenKind,
} from "./bindings";

import type { DecisionInput } from "./bindings";

/** How long a decision is remembered. */
export type Remember = DecisionInput["remember"];

// ---- TEMPORARY: not in ./bindings yet ---------------------------------------------------------

/** `events_page` / `events_export` query (the binding `EventQueryInput` is still a placeholder
 * without kinds, outcome, time range or text). */
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

export type KillSummary = { agents: number; grants: number; tokens: number; pendingDenied: number };

export type Settings = {
  approvalTimeoutSecs: number;
  notifyConsent: boolean;
  notifyAction: boolean;
  notifyGateway: boolean;
  listen: string;
  startAtLogin: boolean;
};

/** A vault connection as `connections_list` serializes the core's `ConnectionRow`. */
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
