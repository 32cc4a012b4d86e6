//! What the Connections view says about a connection that is not active, and how to fix it with
//! the CLI (the IPC contract has no reconnect command: signing in again runs in the browser
//! through `gatehouse connections reconnect`).
import type { ConnectionView } from "./types";

export type Reconnect = { text: string; commands: string[] };

export function reconnectHint(c: Pick<ConnectionView, "name" | "kind" | "status">): Reconnect | null {
  if (c.status === "active") return null;
  const rm = `gatehouse connections rm ${c.name}`;
  if (c.kind === "oauth") {
    return {
      text:
        c.status === "expired"
          ? "The provider no longer accepts its refresh token. Sign in to the account again (this opens your browser):"
          : "This account is disconnected. Sign in to it again:",
      commands: [`gatehouse connections reconnect ${c.name}`],
    };
  }
  const flag = c.kind === "api_key" ? "--api-key" : "--bearer";
  return {
    text: c.status === "expired" ? "Its credential expired. Replace it with a fresh one:" : "Connect it again:",
    commands: [rm, `gatehouse connections add ${c.name} --url URL ${flag}`],
  };
}
