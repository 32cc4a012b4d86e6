import { describe, expect, it } from "vitest";
import {
  appendPage,
  buildQuery,
  emptyFeed,
  matches,
  mergeLive,
  NO_FILTERS,
  nextBeforeId,
  offsetOf,
  prependChunk,
  refetchQuery,
  visibleRange,
  type Feed,
  type Filters,
} from "./activity";
import type { Event } from "./types";

const NOW = 1_800_000_000_000;

function ev(id: number, over: Partial<Event> = {}): Event {
  return { id, ts: NOW - 1000, kind: "token.issued", outcome: "ok", client_id: "c1", detail: {}, hash: "h", ...over };
}
const f = (over: Partial<Filters>): Filters => ({ ...NO_FILTERS, ...over });

describe("buildQuery", () => {
  it.each<[string, Filters, number | undefined, object]>([
    ["nothing set", NO_FILTERS, undefined, { limit: 100 }],
    ["agent", f({ agent: "c1" }), undefined, { limit: 100, clientId: "c1" }],
    ["kind", f({ kind: "gateway.call" }), undefined, { limit: 100, kinds: ["gateway.call"] }],
    ["outcome", f({ outcome: "denied" }), undefined, { limit: 100, outcome: "denied" }],
    ["last hour", f({ range: "hour" }), undefined, { limit: 100, since: NOW - 3_600_000 }],
    ["last week", f({ range: "week" }), undefined, { limit: 100, since: NOW - 604_800_000 }],
    ["text trimmed", f({ text: "  github  " }), undefined, { limit: 100, text: "github" }],
    ["blank text dropped", f({ text: "   " }), undefined, { limit: 100 }],
    ["keyset cursor", NO_FILTERS, 4242, { limit: 100, beforeId: 4242 }],
    [
      "everything",
      f({ agent: "c2", kind: "consent.denied", outcome: "denied", range: "day", text: "mail" }),
      17,
      { limit: 100, clientId: "c2", kinds: ["consent.denied"], outcome: "denied", since: NOW - 86_400_000, text: "mail", beforeId: 17 },
    ],
  ])("%s", (_, filters, before, want) => expect(buildQuery(filters, NOW, before)).toEqual(want));
});

describe("matches", () => {
  it.each<[string, Event, Filters, boolean]>([
    ["no filters", ev(1), NO_FILTERS, true],
    ["other agent", ev(1), f({ agent: "c2" }), false],
    ["same agent", ev(1), f({ agent: "c1" }), true],
    ["other kind", ev(1), f({ kind: "gateway.call" }), false],
    ["other outcome", ev(1), f({ outcome: "denied" }), false],
    ["inside range", ev(1, { ts: NOW - 60_000 }), f({ range: "hour" }), true],
    ["outside range", ev(1, { ts: NOW - 7_200_000 }), f({ range: "hour" }), false],
    ["text in detail", ev(1, { detail: { path: "/User/Repos" } }), f({ text: "user repos" }), true],
    ["text missing", ev(1, { detail: { path: "/user" } }), f({ text: "repos" }), false],
    ["text in kind", ev(1), f({ text: "TOKEN" }), true],
  ])("%s", (_, e, filters, want) => expect(matches(e, filters, NOW)).toBe(want));
});

/** A page of `n` events, newest first, from `top` down. */
const page = (top: number, n: number): Event[] => Array.from({ length: n }, (_, i) => ev(top - i));
const ids = (feed: Feed) => feed.rows.map((e) => e.id);

describe("keyset feed", () => {
  it("first page, cursor, older page, end", () => {
    const feed = emptyFeed();
    expect(appendPage(feed, [ev(10), ev(9), ev(8)], 3)).toBe(3);
    expect(feed.done).toBe(false);
    expect(nextBeforeId(feed)).toBe(8);
    appendPage(feed, [ev(7), ev(6)], 3);
    expect(ids(feed)).toEqual([10, 9, 8, 7, 6]);
    expect(feed.done).toBe(true);
  });
  it("an empty feed has no cursor", () => expect(nextBeforeId(emptyFeed())).toBeUndefined());
  it("a page overlapping what is loaded is not repeated", () => {
    const feed = emptyFeed();
    appendPage(feed, [ev(10), ev(9)], 2);
    expect(appendPage(feed, [ev(9), ev(8)], 2)).toBe(1);
    expect(ids(feed)).toEqual([10, 9, 8]);
  });
  it("appends in place: the same array, not a copy per page", () => {
    const feed = emptyFeed();
    const rows = feed.rows;
    for (let p = 0; p < 5; p++) appendPage(feed, page(1000 - p * 10, 10), 10, 1000);
    expect(feed.rows).toBe(rows);
    expect(feed.rows.length).toBe(50);
    expect(feed.rows[49]!.id).toBe(951);
  });
});

describe("bounded window", () => {
  // Pages of 100 (PAGE_SIZE, the drop chunk) with at most 300 loaded.
  const MAX = 300;
  function scrolledDown(pages: number): Feed {
    const feed = emptyFeed();
    for (let p = 0; p < pages; p++) appendPage(feed, page(10_000 - p * 100, 100), 100, MAX);
    return feed;
  }
  it.each<[string, number, number, number, number]>([
    // pages loaded, rows held, rows dropped above, chunks remembered
    ["under the bound nothing drops", 3, 300, 0, 0],
    ["one page over drops one chunk", 4, 300, 100, 1],
    ["a long scroll stays bounded", 50, 300, 4700, 47],
  ])("%s", (_, pages, held, dropped, chunks) => {
    const feed = scrolledDown(pages);
    expect(feed.rows.length).toBe(held);
    expect(offsetOf(feed)).toBe(dropped);
    expect(feed.above.length).toBe(chunks);
    // Dropped + loaded = every row fetched: the scroll geometry does not move when rows drop.
    expect(offsetOf(feed) + feed.rows.length).toBe(pages * 100);
    // The loaded rows are the newest-first run just below what was dropped.
    expect(feed.rows[0]!.id).toBe(10_000 - dropped);
  });
  it("remembers cursors that re-fetch exactly the dropped rows", () => {
    const feed = scrolledDown(6);
    // The top chunk re-fetches from the newest; the next from just above its first row.
    expect(feed.above).toEqual([
      { beforeId: null, count: 100 },
      { beforeId: 9_901, count: 100 },
      { beforeId: 9_801, count: 100 },
    ]);
    expect(refetchQuery(feed)).toEqual({ beforeId: 9_801, count: 100 });
  });
  it("scrolling back up re-fetches the chunk in place and drops from the bottom", () => {
    const feed = scrolledDown(6); // rows 9700..9401 loaded, 300 dropped above
    const rows = feed.rows;
    // What the store answers for beforeId 9801, limit 100.
    expect(prependChunk(feed, page(9_800, 100), MAX)).toBe(0);
    expect(feed.rows).toBe(rows);
    expect(feed.rows.length).toBe(MAX);
    expect(feed.rows[0]!.id).toBe(9_800);
    expect(nextBeforeId(feed)).toBe(9_501);
    expect(offsetOf(feed)).toBe(200);
    // The cut bottom comes back as an older page.
    expect(feed.done).toBe(false);
    appendPage(feed, page(9_500, 100), 100, MAX);
    expect(feed.rows[0]!.id).toBe(9_700);
  });
  it("a re-fetched chunk that came back short reports the rows lost", () => {
    const feed = scrolledDown(4);
    expect(prependChunk(feed, page(10_000, 90), MAX)).toBe(10);
    expect(offsetOf(feed)).toBe(0);
  });
  it("nothing dropped, nothing to re-fetch", () => {
    const feed = scrolledDown(2);
    expect(refetchQuery(feed)).toBeUndefined();
    expect(prependChunk(feed, page(10_000, 100), MAX)).toBe(0);
    expect(feed.rows.length).toBe(200);
  });
  it("live events while the top is dropped grow the top chunk", () => {
    const feed = scrolledDown(5);
    const loaded = ids(feed);
    expect(mergeLive(feed, [ev(10_001), ev(10_002), ev(10_002)], MAX)).toBe(2);
    expect(ids(feed)).toEqual(loaded);
    expect(feed.above[0]).toEqual({ beforeId: null, count: 102 });
    expect(offsetOf(feed) + feed.rows.length).toBe(502);
  });
  it("live events at the top stay bounded by cutting the bottom", () => {
    const feed = scrolledDown(3);
    feed.done = true;
    expect(mergeLive(feed, [ev(10_001)], MAX)).toBe(1);
    expect(feed.rows.length).toBe(MAX);
    expect(feed.rows[0]!.id).toBe(10_001);
    expect(nextBeforeId(feed)).toBe(9_702);
    expect(feed.done).toBe(false);
  });
});

describe("mergeLive", () => {
  function base(): Feed {
    const feed = emptyFeed();
    appendPage(feed, [ev(10), ev(9)], 2);
    return feed;
  }
  it.each<[string, number[], number[], number]>([
    ["prepend", [11], [11, 10, 9], 1],
    ["two in order", [11, 12], [12, 11, 10, 9], 2],
    ["duplicate dropped", [10, 11], [11, 10, 9], 1],
    ["duplicate within the batch", [11, 11], [11, 10, 9], 1],
    ["late arrival goes in its place", [13, 12], [13, 12, 10, 9], 2],
    ["nothing", [], [10, 9], 0],
    ["a single duplicate", [10], [10, 9], 0],
    ["a single older one", [8], [10, 9, 8], 1],
  ])("%s", (_, incoming, want, added) => {
    const feed = base();
    expect(mergeLive(feed, incoming.map((i) => ev(i)))).toBe(added);
    expect(ids(feed)).toEqual(want);
  });
  it("keeps done", () => {
    const feed: Feed = { rows: [], above: [], done: true };
    mergeLive(feed, [ev(1)]);
    expect(feed.done).toBe(true);
  });
});

describe("visibleRange", () => {
  it.each<[string, number, number, number, number, { start: number; end: number }]>([
    ["top", 0, 400, 40, 1000, { start: 0, end: 21 }],
    ["middle", 4000, 400, 40, 1000, { start: 90, end: 121 }],
    ["bottom clamps", 39_800, 400, 40, 1000, { start: 985, end: 1000 }],
    ["short list", 0, 400, 40, 3, { start: 0, end: 3 }],
    ["empty", 0, 400, 40, 0, { start: 0, end: 0 }],
    ["a million rows stay a window", 40_000_000, 800, 40, 1_000_000, { start: 999_990, end: 1_000_000 }],
  ])("%s", (_, top, vp, h, n, want) => expect(visibleRange(top, vp, h, n)).toEqual(want));
});
