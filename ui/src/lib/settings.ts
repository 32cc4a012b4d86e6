//! The Settings form's data: what is saved from what was typed, and whether anything changed.
import type { Settings } from "./types";

/** What `settings_set` receives: a whole number of seconds, and no listen address (`null`, the
 * default) when the field was left blank. */
export function toSave(draft: Settings): Settings {
  const listen = draft.listen?.trim() ?? "";
  return { ...draft, approvalTimeoutSecs: Math.round(Number(draft.approvalTimeoutSecs)), listen: listen || null };
}

export function changed(saved: Settings, draft: Settings): boolean {
  const a = toSave(saved);
  const b = toSave(draft);
  return (Object.keys(a) as Array<keyof Settings>).some((k) => a[k] !== b[k]);
}

/** Whether saving moves the listen address (which only applies at the next start). */
export function listenMoves(saved: Settings, draft: Settings): boolean {
  return toSave(saved).listen !== toSave(draft).listen;
}
