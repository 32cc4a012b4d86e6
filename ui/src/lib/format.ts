//! Time and size formatting shared by the views: countdowns, "3 min ago", durations, bytes.

/** Under this many milliseconds left, a countdown turns urgent. */
export const URGENT_MS = 15_000;

export type Countdown = { text: string; urgent: boolean; over: boolean };

/** What a countdown to `expires_at` shows at `now`: `m:ss` (or `h:mm:ss`), urgent under 15 s. */
export function countdown(expires_at: number, now: number): Countdown {
  const left = Math.max(0, expires_at - now);
  // Round up so "0:00" only shows once the time is really over.
  const total = Math.ceil(left / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  const text = h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  return { text, urgent: left < URGENT_MS, over: left <= 0 };
}

/** A duration in words, coarse: "850 ms", "12 s", "4 min", "2 h 5 min", "3 d". */
export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  const s = Math.round(abs / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return `${d} d`;
}

/** `ts` relative to `now`: "just now", "5 min ago", "in 2 h". */
export function relative(ts: number, now: number): string {
  const diff = ts - now;
  if (Math.abs(diff) < 5000) return "just now";
  return diff < 0 ? `${duration(-diff)} ago` : `in ${duration(diff)}`;
}

/** A local date and time, to the second: "2026-11-30 14:05:09". */
export function dateTime(ts: number): string {
  const d = new Date(ts);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A byte count: "512 B", "1.5 KB", "20 MB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`;
}

/** A compact timestamp for lists: the time alone today, else the date and minute. */
export function stamp(ts: number, now: number): string {
  const d = new Date(ts);
  const n = new Date(now);
  const full = dateTime(ts);
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? full.slice(11) : full.slice(0, 16);
}

/** "1 event", "3 events". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/** A message from elsewhere as a sentence: capitalized, ending with a full stop. */
export function sentence(s: string): string {
  const t = s.trim();
  if (!t) return t;
  const cap = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?]$/.test(cap) ? cap : `${cap}.`;
}
