//! What the Agents view derives from an `AgentOverview`: live grants and, per grant, its live
//! tokens and when the last of them expires (a grant itself has no expiry; its tokens do).
import type { AgentOverview, Grant, Token } from "./types";

export function agentName(a: { client_name: string | null; client_id: string }): string {
  return a.client_name ?? a.client_id;
}

export type GrantLine = { grant: Grant; tokens: number; expiresAt: number | null };

/** The agent's grants not revoked, newest first, each with its live tokens. */
export function liveGrants(a: AgentOverview): GrantLine[] {
  const byGrant = new Map<number, Token[]>();
  for (const t of a.live_tokens) {
    const list = byGrant.get(t.grant_id) ?? [];
    list.push(t);
    byGrant.set(t.grant_id, list);
  }
  return a.grants
    .filter((g) => g.revoked_at === null)
    .sort((x, y) => y.created_at - x.created_at)
    .map((grant) => {
      const tokens = byGrant.get(grant.id) ?? [];
      const expiresAt = tokens.reduce<number | null>((m, t) => (m === null || t.expires_at > m ? t.expires_at : m), null);
      return { grant, tokens: tokens.length, expiresAt };
    });
}

/** When the agent's next live token expires, or null without any. */
export function nextExpiry(a: AgentOverview): number | null {
  return a.live_tokens.reduce<number | null>((m, t) => (m === null || t.expires_at < m ? t.expires_at : m), null);
}

export function isSuspended(a: Pick<AgentOverview, "suspended_at">): boolean {
  return a.suspended_at !== null;
}

/** Active agents first (most recently seen first), then suspended, then revoked. */
export function byStanding(agents: AgentOverview[]): AgentOverview[] {
  const rank = (a: AgentOverview) => (a.revoked_at !== null ? 2 : a.suspended_at !== null ? 1 : 0);
  const seen = (a: AgentOverview) => a.last_seen_at ?? a.created_at;
  return [...agents].sort((x, y) => rank(x) - rank(y) || seen(y) - seen(x));
}
