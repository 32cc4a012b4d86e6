//! The Activity view's logic: filters to an `EventQuery`, the keyset-paginated feed, merging live
//! events into it, and the window of rows actually rendered.
import type { Event, EventQuery } from "./types";

export type TimeRange = "hour" | "day" | "week" | "all";

export const RANGE_MS: Record<TimeRange, number | null> = {
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
  all: null,
};

export type Filters = {
  /** A client id, or "" for every agent. */
  agent: string;
  /** An event kind, or "" for every kind. */
  kind: string;
  /** `ok`, `denied`, `rejected`, or "" for any. */
  outcome: string;
  range: TimeRange;
  text: string;
};

export const NO_FILTERS: Filters = { agent: "", kind: "", outcome: "", range: "all", text: "" };

export const PAGE_SIZE = 100;

/** The `limit` of an export query: everything the filters match. */
export const EXPORT_LIMIT = 0;

/** The query for one page: only the filters that are set; `since` from the range at `now`. */
export function buildQuery(f: Filters, now: number, beforeId?: number, limit = PAGE_SIZE): EventQuery {
  const q: EventQuery = { limit };
  if (f.agent) q.clientId = f.agent;
  if (f.kind) q.kinds = [f.kind];
  if (f.outcome) q.outcome = f.outcome;
  const span = RANGE_MS[f.range];
  if (span !== null) q.since = now - span;
  const text = f.text.trim();
  if (text) q.text = text;
  if (beforeId !== undefined) q.beforeId = beforeId;
  return q;
}

/** Whether a live event belongs in the feed under `f` (the same test the store applies, roughly:
 * text matches the kind, agent or detail, case-insensitively). */
export function matches(e: Event, f: Filters, now: number): boolean {
  if (f.agent && e.client_id !== f.agent) return false;
  if (f.kind && e.kind !== f.kind) return false;
  if (f.outcome && e.outcome !== f.outcome) return false;
  const span = RANGE_MS[f.range];
  if (span !== null && e.ts < now - span) return false;
  const text = f.text.trim().toLowerCase();
  if (text) {
    const hay = `${e.kind} ${e.outcome} ${e.client_id ?? ""} ${JSON.stringify(e.detail)}`.toLowerCase();
    if (!text.split(/\s+/).every((w) => hay.includes(w))) return false;
  }
  return true;
}

/** The feed as loaded so far, newest first. */
export type Feed = {
  rows: Event[];
  /** True once a page came back short: there is nothing older. */
  done: boolean;
};

export const EMPTY_FEED: Feed = { rows: [], done: false };

/** The keyset cursor for the next (older) page: the last row's id. */
export function nextBeforeId(feed: Feed): number | undefined {
  return feed.rows.length ? feed.rows[feed.rows.length - 1]!.id : undefined;
}

/** The feed after an older page arrived (rows already present are not repeated). */
export function appendPage(feed: Feed, page: Event[], limit = PAGE_SIZE): Feed {
  const last = nextBeforeId(feed);
  const older = last === undefined ? page : page.filter((e) => e.id < last);
  return { rows: feed.rows.concat(older), done: page.length < limit };
}

/** The feed after live events arrived: each new id goes in its place (newest first), duplicates
 * are dropped. Live events usually arrive in order, so this is a prepend. */
export function mergeLive(feed: Feed, incoming: Event[]): Feed {
  if (incoming.length === 0) return feed;
  const newest = feed.rows.length ? feed.rows[0]!.id : -Infinity;
  // The usual case, one event newer than anything shown: a prepend, no set or sort over the feed.
  if (incoming.length === 1 && incoming[0]!.id > newest) return { ...feed, rows: [incoming[0]!, ...feed.rows] };
  const seen = new Set(feed.rows.map((e) => e.id));
  const fresh: Event[] = [];
  for (const e of incoming) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    fresh.push(e);
  }
  if (fresh.length === 0) return feed;
  const rows = fresh.concat(feed.rows);
  rows.sort((a, b) => b.id - a.id);
  return { ...feed, rows };
}

/** The slice of rows to render for a fixed row height: what is on screen plus `overscan` rows
 * either side. The DOM stays bounded whatever the feed's length. */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  count: number,
  overscan = 10,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + shown + overscan);
  return { start, end: Math.max(start, end) };
}
