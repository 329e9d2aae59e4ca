// The staff WhatsApp inbox: conversations with status, who answers, unread counts and the last
// message, filtered on the server at load and on the client for live updates.
import type { Change } from "../client";
import { h, KeyedList, time } from "../dom";
import { aiAnswering, filterQuery, type InboxFilter } from "../store/inbox";
import type { Conversation } from "../types";
import type { App } from "./app";
import { modeText } from "./conversation";

export class InboxView {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "inbox-list", testid: "inbox-list", "aria-label": "Conversations" });
  private readonly status = h("p", { class: "muted", role: "status" }, "Loading…");
  private readonly keyed = new KeyedList(this.list);
  private filter: InboxFilter = {};

  constructor(private readonly app: App) {
    this.el = h("section", { class: "inbox", "aria-labelledby": "inbox-title" },
      h("h2", { id: "inbox-title" }, "WhatsApp inbox"), this.filters(), this.status, this.list);
    void this.load();
  }

  update(c: Change): void {
    if (c.kind === "inbox") this.render();
  }

  private async load(): Promise<void> {
    try {
      const r = await this.app.api.call<{ conversations: Conversation[] }>("GET", `/api/v1/wa/conversations${filterQuery(this.filter)}`);
      this.app.client.inbox.setAll(r.conversations);
      this.render();
    } catch (err) {
      this.status.textContent = (err as Error).message;
    }
  }

  private render(): void {
    const convs = this.app.client.inbox.list(this.filter, this.app.me.id);
    this.status.textContent = convs.length ? "" : "No conversations.";
    this.keyed.render(convs.map((c) => ({
      key: String(c.room_id),
      sig: JSON.stringify([c.status, c.mode, c.ai_enabled, c.assignee?.id, c.unread, c.last_message?.id, c.window_open, c.contact.name]),
      make: () => this.item(c),
    })));
  }

  private item(c: Conversation): HTMLElement {
    const name = c.contact.name || `+${c.contact.wa_id}`;
    const last = c.last_message;
    return h("li", {},
      h("a", { href: `#/room/${c.room_id}`, testid: "inbox-item", "data-room": c.room_id, class: `conv ${c.status}${c.unread ? " has-unread" : ""}`,
        "aria-label": `${name}, ${c.status}, ${modeText(c)}${c.unread ? `, ${c.unread} unread` : ""}` },
        h("div", { class: "line" },
          h("b", { class: "name" }, name),
          h("span", { class: `pill ${c.status}` }, c.status),
          h("span", { class: `pill ${aiAnswering(c) ? "ai" : "human"}` }, aiAnswering(c) ? "AI" : c.assignee?.display_name ?? "unassigned"),
          c.channel === "linked_device" ? h("span", { class: "pill channel", testid: "inbox-channel", title: "through a phone linked as WhatsApp Web" }, "WhatsApp Web") : null,
          c.unread ? h("span", { class: "badge", testid: "unread" }, c.unread) : null,
          h("time", { class: "when", datetime: last?.created_at ?? "" }, time(last?.created_at ?? null))),
        h("div", { class: "preview" }, last ? `${last.author_kind === "contact" ? "" : "↩ "}${last.body}` : ""),
        c.window_open ? null : h("div", { class: "warn small" }, "24-hour window closed")));
  }

  private filters(): HTMLElement {
    const select = (testid: string, label: string, options: [string, string][], apply: (v: string) => void) => {
      const s = h("select", { testid, "aria-label": label }, ...options.map(([v, t]) => h("option", { value: v }, t)));
      s.addEventListener("change", () => { apply(s.value); void this.load(); });
      return h("label", { class: "field inline" }, h("span", {}, label), s);
    };
    const unread = h("input", { type: "checkbox", testid: "inbox-unread" });
    unread.addEventListener("change", () => { this.filter.unread = unread.checked ? true : undefined; void this.load(); });
    return h("div", { class: "filters", role: "group", "aria-label": "Filters" },
      select("inbox-status", "Status", [["", "any"], ["open", "open"], ["pending", "pending"], ["closed", "closed"]], (v) => { this.filter.status = v || undefined; }),
      select("inbox-assignee", "Assignee", [["", "anyone"], ["me", "me"], ["none", "nobody"]], (v) => { this.filter.assignee = v || undefined; }),
      select("inbox-ai", "Assistant", [["", "any"], ["true", "on"], ["false", "off"]], (v) => { this.filter.ai = v === "" ? undefined : v === "true"; }),
      h("label", { class: "check" }, unread, " unread only"));
  }
}
