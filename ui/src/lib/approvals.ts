//! One-line presentation of approvals for the lists (pending and history).
import { joinScopes } from "./events";
import { duration } from "./format";
import type { ApprovalOverview, ApprovalView } from "./types";

/** What is asked, in one line: the first summary line, else the gateway call, else the scopes. */
export function headline(a: ApprovalView): string {
  if (a.summary.length) return a.summary[0]!;
  if (a.kind === "consent") return `Sign in with ${joinScopes(a.scopes)}`;
  if (a.binding_message) return a.binding_message;
  return `Act with ${joinScopes(a.scopes)}`;
}

/** "approved in the window after 4 s", "expired after 2 min", "pending". */
export function outcomeLine(a: ApprovalOverview): string {
  if (a.status === "pending") return "pending";
  const after = a.decided_after_ms !== null ? ` after ${duration(a.decided_after_ms)}` : "";
  if (a.status === "expired") return `expired${after}`;
  const where = a.channel ? ` via ${a.channel}` : "";
  return `${a.status}${where}${after}`;
}
