import { describe, expect, it } from "vitest";
import {
  appendPage,
  buildQuery,
  EMPTY_FEED,
  matches,
  mergeLive,
  NO_FILTERS,
  nextBeforeId,
  visibleRange,
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

describe("keyset feed", () => {
  it("first page, cursor, older page, end", () => {
    let feed = appendPage(EMPTY_FEED, [ev(10), ev(9), ev(8)], 3);
    expect(feed.done).toBe(false);
    expect(nextBeforeId(feed)).toBe(8);
    feed = appendPage(feed, [ev(7), ev(6)], 3);
    expect(feed.rows.map((e) => e.id)).toEqual([10, 9, 8, 7, 6]);
    expect(feed.done).toBe(true);
  });
  it("an empty feed has no cursor", () => expect(nextBeforeId(EMPTY_FEED)).toBeUndefined());
  it("a page overlapping what is loaded is not repeated", () => {
    const feed = appendPage(appendPage(EMPTY_FEED, [ev(10), ev(9)], 2), [ev(9), ev(8)], 2);
    expect(feed.rows.map((e) => e.id)).toEqual([10, 9, 8]);
  });
});

describe("mergeLive", () => {
  const base = appendPage(EMPTY_FEED, [ev(10), ev(9)], 2);
  it.each<[string, number[], number[]]>([
    ["prepend", [11], [11, 10, 9]],
    ["two in order", [11, 12], [12, 11, 10, 9]],
    ["duplicate dropped", [10, 11], [11, 10, 9]],
    ["duplicate within the batch", [11, 11], [11, 10, 9]],
    ["late arrival goes in its place", [13, 12], [13, 12, 10, 9]],
    ["nothing", [], [10, 9]],
    ["a single duplicate", [10], [10, 9]],
    ["a single older one", [8], [10, 9, 8]],
  ])("%s", (_, ids, want) => expect(mergeLive(base, ids.map((i) => ev(i))).rows.map((e) => e.id)).toEqual(want));
  it("keeps done", () => expect(mergeLive({ rows: [], done: true }, [ev(1)]).done).toBe(true));
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
