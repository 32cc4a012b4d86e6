//! Hash routes: `#/consent/ID` is the consent window; `#/approvals` … `#/settings` the main views.

export const VIEWS = ["approvals", "agents", "activity", "rules", "connections", "mcp", "settings"] as const;
export type View = (typeof VIEWS)[number];

export type Route = { kind: "consent"; id: string } | { kind: "main"; view: View };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  const [head, ...rest] = path.split("/");
  if (head === "consent" && rest.length && rest[0]) {
    return { kind: "consent", id: decodeURIComponent(rest.join("/")) };
  }
  const view = VIEWS.find((v) => v === head);
  return { kind: "main", view: view ?? "approvals" };
}

export function href(view: View): string {
  return `#/${view}`;
}
