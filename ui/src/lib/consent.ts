//! The consent window's decisions as plain data: what Approve and Deny send, what an error from
//! `approval_decide` means for the person, and which keys do what (Esc denies, Enter never approves).
import type { ApprovalStatus, DecisionInput, IpcError, Remember } from "./types";

export const REMEMBER_CHOICES: Array<{ value: Remember; label: string }> = [
  { value: "once", label: "Just this once" },
  { value: "1h", label: "For 1 hour" },
  { value: "8h", label: "For 8 hours" },
  { value: "always", label: "Always" },
];

/** Approve grants exactly the ticked scopes, in the order they were asked. */
export function approveDecision(asked: string[], ticked: ReadonlySet<string>, remember: Remember): DecisionInput {
  return { approve: true, scopes: asked.filter((s) => ticked.has(s)), remember };
}

export const DENY: DecisionInput = { approve: false, remember: "once" };

/** Approve makes sense only when something is ticked, or when nothing was asked (an action). */
export function canApprove(asked: string[], ticked: ReadonlySet<string>): boolean {
  return asked.length === 0 || asked.some((s) => ticked.has(s));
}

/** `settled`: decided elsewhere; the window asks `approval_get` which way. */
export type Outcome = { status: ApprovalStatus | "settled" | "error"; message: string };

/** What the person sees after `approval_decide` failed: a calm final status when the request was
 * already settled elsewhere or ran out, an error otherwise. */
export function outcomeOfError(e: IpcError): Outcome {
  switch (e.code) {
    case "expired":
      return { status: "expired", message: "This request expired before it was answered." };
    case "already_decided":
      return { status: "settled", message: "This request was already answered elsewhere." };
    case "not_found":
      return { status: "expired", message: "This request is no longer waiting." };
    default:
      return { status: "error", message: e.message };
  }
}

export const STATUS_LABEL: Record<ApprovalStatus, string> = {
  pending: "Waiting",
  approved: "Approved",
  denied: "Denied",
  expired: "Expired",
};

export type KeyAction = "deny" | "block" | "default";

/** Esc denies anywhere; Enter does nothing unless it is on the Deny button (Enter never
 * approves, and on a checkbox it must not toggle or submit). */
export function keyAction(key: string, target: { tagName: string; testId?: string | null }): KeyAction {
  if (key === "Escape") return "deny";
  if (key === "Enter") return target.tagName === "BUTTON" && target.testId === "deny" ? "default" : "block";
  return "default";
}

/** The line under the agent's name for an action approval, by how it was asked. */
export function actionLead(via: string | null): string {
  switch (via) {
    case "gateway":
      return "wants to make this request through Gatehouse";
    case "device":
      return "wants to act for you (it showed you a code)";
    case "ciba":
      return "wants to act for you";
    default:
      return "wants to act for you";
  }
}

/** For an MCP tool call, what a remembered decision covers: these exact arguments, or any. */
export type RememberCover = "exact" | "any";

export const COVER_CHOICES: Array<{ value: RememberCover; label: string }> = [
  { value: "exact", label: "For these exact arguments" },
  { value: "any", label: "For any arguments of this tool" },
];

/** The decision with the person's choice of cover: `broader` only when something is remembered
 * and the request offers a broader pattern (an MCP tool call does). */
export function withCover(decision: DecisionInput, offered: boolean, cover: RememberCover): DecisionInput {
  if (!offered || !decision.approve || decision.remember === "once" || cover !== "any") return decision;
  return { ...decision, broader: true };
}
