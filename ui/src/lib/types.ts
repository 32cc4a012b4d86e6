//! The IPC types the UI speaks. They all come from Rust: `./bindings` is generated with ts-rs
//! (`cargo test -p gatehouse-desktop export_bindings`) from the core's types (snake_case, as serde
//! writes them) and the shell's DTOs (camelCase). This module only re-exports them and names the
//! one derived type the views use.

export type {
  AddKeyInput,
  AgentOverview,
  AppStatus,
  ApprovalOverview,
  ApprovalStatus,
  ApprovalView,
  ConnectInput,
  ConnectionView,
  ConnectStarted,
  DecidedNotice,
  DecisionInput,
  Event,
  EventQuery,
  ExportFormat,
  ExportResult,
  Grant,
  IpcError,
  IpcErrorCode,
  JsonValue,
  KeyKind,
  KillSummary,
  McpEnvView,
  McpServerView,
  McpToolDefinition,
  McpToolView,
  McpUpstreamView,
  RemoveResult,
  Revocation,
  RevokeSummary,
  RuleRow,
  Settings,
  Token,
  TokenKind,
  ToolCounts,
  ToolStatus,
} from "./bindings";

import type { DecisionInput } from "./bindings";

/** How long a decision is remembered. */
export type Remember = DecisionInput["remember"];
