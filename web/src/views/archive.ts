// Archive search (staff): messages that left the hot store, by room, user, time range and text,
// paged with the archive's cursor, and a room's full export as JSON lines.
// chat-archive takes the same Bearer token; `GET /api/v1/archive/config` says where it is.
import { fill, h, say } from "../dom";
import type { Message } from "../types";
import type { App } from "./app";
import { type ItemContext, messageItem } from "./messages";

export interface ArchiveQuery {
  q: string;
  room: string;
  user: string;
  from: string; // yyyy-mm-dd, inclusive
  to: string; // yyyy-mm-dd, inclusive
}

/** The archive path for a query, or an error message when the query cannot run. */
export function archivePath(f: ArchiveQuery, cursor: string | null = null, limit = 50): { path: string } | { error: string } {
  const room = f.room.trim();
  const user = f.user.trim();
  if (room && !/^\d+$/.test(room)) return { error: "The room is a number (the room id)." };
  if (user && !/^\d+$/.test(user)) return { error: "The user is a number (the user id)." };
  if (!room && !user) return { error: "Give a room or a user to search in." };
  const p = new URLSearchParams();
  if (f.from) p.set("from", new Date(`${f.from}T00:00:00`).toISOString());
  if (f.to) {
    const end = new Date(`${f.to}T00:00:00`);
    end.setDate(end.getDate() + 1); // the archive's "to" is exclusive; the day picked is included
    p.set("to", end.toISOString());
  }
  if (cursor) p.set("cursor", cursor);
  p.set("limit", String(limit));
  if (f.q.trim()) {
    p.set("q", f.q.trim());
    if (room) p.set("room_id", room);
    if (user) p.set("user_id", user);
    return { path: `/archive/v1/search?${p}` };
  }
  return { path: room ? `/archive/v1/rooms/${room}/messages?${p}` : `/archive/v1/users/${user}/messages?${p}` };
}

export function archivePane(app: App): HTMLElement {
  const section = h("section", { class: "archive", "aria-labelledby": "archive-title" }, h("h2", { id: "archive-title" }, "Archive search"), h("p", { class: "muted" }, "Loading…"));
  void app.api.call<{ enabled: boolean; base_url: string }>("GET", "/api/v1/archive/config").then(
    (cfg) => {
      if (!cfg.enabled) fill(section, section.firstChild, h("p", { testid: "archive-off" }, "The archive is not configured on this server: every message is still in the chat history."));
      else fill(section, section.firstChild, ...searchForm(app, cfg.base_url.replace(/\/$/, "")));
    },
    (err: Error) => fill(section, section.firstChild, h("p", { class: "error", role: "alert" }, err.message)));
  return section;
}

function searchForm(app: App, base: string): HTMLElement[] {
  const input = (testid: string, label: string, attrs: Record<string, string> = {}) => {
    const el = h("input", { testid, name: testid, ...attrs });
    return { el, field: h("label", { class: "field" }, h("span", {}, label), el) };
  };
  const q = input("archive-q", "Text", { type: "search" });
  const room = input("archive-room", "Room id", { inputmode: "numeric" });
  const user = input("archive-user", "User id", { inputmode: "numeric" });
  const from = input("archive-from", "From", { type: "date" });
  const to = input("archive-to", "To", { type: "date" });
  const results = h("ul", { class: "messages archive-results", testid: "archive-results", "aria-live": "polite" });
  const error = h("p", { class: "error", testid: "archive-error", role: "alert" });
  const more = h("button", { type: "button", testid: "archive-more", hidden: true }, "More results");
  const exportBtn = h("button", { type: "button", testid: "archive-export" }, "Export room (JSON lines)");
  let cursor: string | null = null;
  const ctx: ItemContext = {
    meId: null, status: () => undefined, lookup: () => undefined, editingId: null, confirmDeleteId: null,
    onEdit: () => undefined, onSaveEdit: () => undefined, onCancel: () => undefined, onDelete: () => undefined,
    onConfirmDelete: () => undefined, onRetry: () => undefined, onDiscard: () => undefined,
  };
  const query = (): ArchiveQuery => ({ q: q.el.value, room: room.el.value, user: user.el.value, from: from.el.value, to: to.el.value });

  const search = async (next: boolean) => {
    const built = archivePath(query(), next ? cursor : null);
    if ("error" in built) return say(error, built.error);
    say(error, "");
    try {
      const data = await app.api.call<{ messages: Message[]; next_cursor: string | null }>("GET", base + built.path);
      if (!next) fill(results);
      for (const m of data.messages) {
        const li = messageItem(m, ctx);
        li.querySelector(".meta")?.append(h("span", { class: "where" }, ` · room ${m.room_id} · #${m.seq}`));
        results.append(li);
      }
      if (!next && data.messages.length === 0) results.append(h("li", { class: "muted" }, "Nothing found."));
      cursor = data.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      say(error, (err as Error).message);
    }
  };
  more.addEventListener("click", () => void search(true));
  exportBtn.addEventListener("click", async () => {
    const id = room.el.value.trim();
    if (!/^\d+$/.test(id)) return say(error, "Give the room id to export.");
    try {
      const blob = await (await app.api.fetchRaw(`${base}/archive/v1/rooms/${id}/export`)).blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `room-${id}.jsonl` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      say(error, (err as Error).message);
    }
  });
  return [
    h("form", { class: "archive-form", "aria-label": "Search the archive", onsubmit: (e) => { e.preventDefault(); void search(false); } },
      q.field, room.field, user.field, from.field, to.field,
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary", testid: "archive-search" }, "Search"), exportBtn)),
    error, results, more,
  ];
}
