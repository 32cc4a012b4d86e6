import { describe, expect, it } from "vitest";
import { bytes, countdown, duration, plural, relative, sentence, stamp } from "./format";

describe("countdown", () => {
  const now = 1_000_000;
  it.each([
    [120_000, "2:00", false, false],
    [61_500, "1:02", false, false],
    [15_000, "0:15", false, false],
    [14_999, "0:15", true, false],
    [9_000, "0:09", true, false],
    [1, "0:01", true, false],
    [0, "0:00", true, true],
    [-5_000, "0:00", true, true],
    [3_723_000, "1:02:03", false, false],
  ])("%i ms left → %s (urgent %s, over %s)", (left, text, urgent, over) => {
    expect(countdown(now + left, now)).toEqual({ text, urgent, over });
  });
});

describe("duration", () => {
  it.each([
    [0, "0 ms"],
    [850, "850 ms"],
    [1_000, "1 s"],
    [12_400, "12 s"],
    [59_600, "1 min"],
    [240_000, "4 min"],
    [3_600_000, "1 h"],
    [7_500_000, "2 h 5 min"],
    [3 * 86_400_000, "3 d"],
  ])("%i → %s", (ms, want) => expect(duration(ms)).toBe(want));
});

describe("relative", () => {
  it.each([
    [0, "just now"],
    [-300_000, "5 min ago"],
    [7_200_000, "in 2 h"],
  ])("%i → %s", (diff, want) => expect(relative(1e12 + diff, 1e12)).toBe(want));
});

describe("bytes", () => {
  it.each([
    [512, "512 B"],
    [1536, "1.5 KB"],
    [20 * 1024 * 1024, "20 MB"],
  ])("%i → %s", (n, want) => expect(bytes(n)).toBe(want));
});

describe("stamp", () => {
  // Local-time dates, so the table holds in any timezone.
  const now = new Date(2026, 10, 30, 15, 0, 0).getTime();
  it.each([
    [new Date(2026, 10, 30, 14, 5, 9).getTime(), "14:05:09"],
    [new Date(2026, 10, 29, 23, 59, 1).getTime(), "2026-11-29 23:59"],
    [new Date(2025, 10, 30, 14, 5, 9).getTime(), "2025-11-30 14:05"],
  ])("%i → %s", (ts, want) => expect(stamp(ts, now)).toBe(want));
});

describe("plural", () => {
  it.each([
    [0, "0 events"],
    [1, "1 event"],
    [1234567, "1,234,567 events"],
  ])("%i → %s", (n, want) => expect(plural(n, "event")).toBe(want));
});

describe("sentence", () => {
  it.each([
    ["the OS keyring is unavailable: Secret Service: no result found", "The OS keyring is unavailable: Secret Service: no result found."],
    ["Already fine.", "Already fine."],
    ["  spaced  ", "Spaced."],
    ["", ""],
  ])("%s → %s", (s, want) => expect(sentence(s)).toBe(want));
});
