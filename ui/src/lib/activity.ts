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

/** At most this many events are held in memory; scrolling further drops pages at the far end. */
export const MAX_LOADED = 2_000;

/** A run of rows dropped from the top of the window: `beforeId` (`null` = from the newest event)
 * and `count` re-fetch exactly them. */
export type DroppedChunk = { beforeId: number | null; count: number };

/** The feed as loaded so far, newest first. A bounded window over the whole log: `rows` are the
 * loaded events; `above` the chunks dropped above them, newest chunk first. It is mutated in place
 * (the arrays are plain, not reactive): the view bumps a counter after each change. */
export type Feed = {
  rows: Event[];
  /** Chunks dropped above `rows`, newest first (`above[0]` is the top of the log). */
  above: DroppedChunk[];
  /** True once a page came back short: there is nothing older than the last row. */
  done: boolean;
};

export function emptyFeed(): Feed {
  return { rows: [], above: [], done: false };
}

/** How many rows sit above the loaded ones (dropped, re-fetchable): the index of `rows[0]`. */
export function offsetOf(feed: Feed): number {
  let n = 0;
  for (const c of feed.above) n += c.count;
  return n;
}

/** The keyset cursor for the next (older) page: the last row's id. */
export function nextBeforeId(feed: Feed): number | undefined {
  return feed.rows.length ? feed.rows[feed.rows.length - 1]!.id : undefined;
}

/** Adds an older page at the bottom, in place (rows already present are not repeated), then drops
 * whole chunks from the top while more than `max` rows are loaded. Returns the rows added. */
export function appendPage(feed: Feed, page: Event[], limit = PAGE_SIZE, max = MAX_LOADED): number {
  const last = nextBeforeId(feed);
  let added = 0;
  for (const e of page) {
    if (last !== undefined && e.id >= last) continue;
    feed.rows.push(e);
    added++;
  }
  feed.done = page.length < limit;
  dropTop(feed, max);
  return added;
}

/** Drops rows from the top, `PAGE_SIZE` at a time, until at most `max` are loaded; each drop is
 * remembered as a chunk with the cursor that re-fetches it. */
export function dropTop(feed: Feed, max = MAX_LOADED, chunk = PAGE_SIZE): void {
  if (feed.rows.length <= max) return;
  const n = Math.ceil((feed.rows.length - max) / chunk) * chunk;
  const gone = feed.rows.splice(0, Math.min(n, feed.rows.length));
  feed.above.push({ beforeId: feed.above.length === 0 ? null : gone[0]!.id + 1, count: gone.length });
}

/** The chunk to re-fetch when the person scrolls back up into dropped rows, or none. */
export function refetchQuery(feed: Feed): DroppedChunk | undefined {
  return feed.above[feed.above.length - 1];
}

/** Puts a re-fetched chunk back above the loaded rows, in place, and drops rows from the bottom
 * to stay within `max` (they come back through `nextBeforeId` as older pages). Returns by how many
 * rows the offset of the loaded rows moved up by more than the page covered (the store may have
 * lost rows meanwhile, e.g. to retention): the view shifts its scroll position by that. */
export function prependChunk(feed: Feed, page: Event[], max = MAX_LOADED): number {
  const chunk = feed.above.pop();
  if (!chunk) return 0;
  const first = feed.rows.length ? feed.rows[0]!.id : -Infinity;
  const fresh = page.filter((e) => e.id > first);
  feed.rows.unshift(...fresh);
  if (feed.rows.length > max) {
    feed.rows.length = max;
    feed.done = false;
  }
  return chunk.count - fresh.length;
}

/** Live events arrived: each new id goes in its place (newest first), duplicates are dropped, in
 * place. When the top of the log is dropped they only grow the top chunk (re-fetched from the
 * newest). Returns how many rows were added above what the person is reading. */
export function mergeLive(feed: Feed, incoming: Event[], max = MAX_LOADED): number {
  if (incoming.length === 0) return 0;
  if (feed.above.length > 0) {
    // Live events are newer than everything loaded: they belong in the dropped top chunk, which
    // is re-fetched from the newest event (`beforeId` null), so counting them is enough.
    const ids = new Set(incoming.map((e) => e.id));
    feed.above[0]!.count += ids.size;
    return ids.size;
  }
  const newest = feed.rows.length ? feed.rows[0]!.id : -Infinity;
  let added = 0;
  // The usual case, one event newer than anything shown: a prepend, no set or sort over the feed.
  if (incoming.length === 1 && incoming[0]!.id > newest) {
    feed.rows.unshift(incoming[0]!);
    added = 1;
  } else {
    const seen = new Set(feed.rows.map((e) => e.id));
    const fresh: Event[] = [];
    for (const e of incoming) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      fresh.push(e);
    }
    if (fresh.length === 0) return 0;
    feed.rows.unshift(...fresh);
    feed.rows.sort((a, b) => b.id - a.id);
    added = fresh.length;
  }
  // Bounded at the bottom: the cut rows come back as older pages.
  if (feed.rows.length > max) {
    feed.rows.length = max;
    feed.done = false;
  }
  return added;
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
