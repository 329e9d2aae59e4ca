// The admin page's audit log: who changed access or data (`GET /api/v1/audit`), newest first,
// filtered by action or target type, with "Older" paging by the server's cursor.
import { fill, h, say } from "../dom";
import type { App } from "./app";

export interface AuditEntry {
  id: number;
  actor: { id: number; username: string; display_name: string } | null;
  action: string;
  target_type: string;
  target_id: number | null;
  meta: Record<string, unknown>;
  created_at: string;
}

const PAGE = 50;

/** The list's query string for the filters and the cursor. */
export function auditPath(filters: { action?: string; target_type?: string }, cursor: number | null): string {
  const p = new URLSearchParams({ limit: String(PAGE) });
  if (filters.action) p.set("action", filters.action);
  if (filters.target_type) p.set("target_type", filters.target_type);
  if (cursor !== null) p.set("cursor", String(cursor));
  return `/api/v1/audit?${p.toString()}`;
}

/** The details column: the meta without the address, as `key: value` pairs. */
export function details(meta: Record<string, unknown>): string {
  return Object.entries(meta).filter(([k]) => k !== "ip")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ");
}

export function auditRow(e: AuditEntry): HTMLElement {
  return h("tr", { "data-audit": e.id, testid: "audit-row" },
    h("td", {}, h("time", { datetime: e.created_at }, new Date(e.created_at).toLocaleString())),
    h("td", {}, e.actor ? e.actor.username : "command line"),
    h("td", {}, e.action),
    h("td", {}, e.target_id === null ? e.target_type : `${e.target_type} ${e.target_id}`),
    h("td", {}, details(e.meta)),
    h("td", {}, typeof e.meta.ip === "string" ? e.meta.ip : ""));
}

export function auditSection(app: App, status: HTMLElement): HTMLElement {
  const body = h("tbody", {});
  const older = h("button", { type: "button", testid: "audit-older", hidden: true }, "Older");
  const action = h("input", { testid: "audit-action", placeholder: "action, e.g. user.role", "aria-label": "Filter by action" });
  const target = h("input", { testid: "audit-target", placeholder: "target, e.g. conversation", "aria-label": "Filter by target type" });
  let cursor: number | null = null;
  const load = async (fresh: boolean) => {
    if (fresh) cursor = null;
    try {
      const r = await app.api.call<{ entries: AuditEntry[]; next_cursor: number | null }>(
        "GET", auditPath({ action: action.value.trim(), target_type: target.value.trim() }, cursor));
      if (fresh) fill(body);
      for (const e of r.entries) body.append(auditRow(e));
      cursor = r.next_cursor;
      older.hidden = cursor === null;
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  older.addEventListener("click", () => void load(false));
  const form = h("form", { class: "row", "aria-label": "Filter the audit log", onsubmit: (e) => { e.preventDefault(); void load(true); } },
    action, target, h("button", { type: "submit", testid: "audit-filter" }, "Filter"));
  void load(true);
  return h("section", { "aria-labelledby": "admin-audit" }, h("h2", { id: "admin-audit" }, "Audit log"), form,
    h("div", { class: "table-wrap" }, h("table", { testid: "audit-log" },
      h("thead", {}, h("tr", {}, ...["When", "Who", "Action", "Target", "Details", "Address"].map((t) => h("th", { scope: "col" }, t)))),
      body)), older);
}
