import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { coalesce, debounce } from "./throttle";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("debounce", () => {
  it("runs once with the last arguments after quiet", () => {
    const seen: string[] = [];
    const d = debounce((s: string) => seen.push(s), 300);
    d("g");
    vi.advanceTimersByTime(200);
    d("gi");
    vi.advanceTimersByTime(200);
    d("git");
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(300);
    expect(seen).toEqual(["git"]);
  });
  it("cancel drops the pending call", () => {
    const f = vi.fn();
    const d = debounce(f, 100);
    d();
    d.cancel();
    vi.advanceTimersByTime(200);
    expect(f).not.toHaveBeenCalled();
  });
});

describe("coalesce", () => {
  it("a burst runs once; a later call runs again", () => {
    const f = vi.fn();
    const c = coalesce(f, 250);
    for (let i = 0; i < 50; i++) c();
    vi.advanceTimersByTime(250);
    expect(f).toHaveBeenCalledTimes(1);
    c();
    vi.advanceTimersByTime(250);
    expect(f).toHaveBeenCalledTimes(2);
  });
});
