// The staff WhatsApp inbox: conversations with status, who answers, labels, unread counts and the
// last message, filtered (status, assignee, AI, label, unread, search) on the server at load and
// on the client for live updates.
import type { Change } from "../client";
import { fill, h, KeyedList, time } from "../dom";
import { aiAnswering, filterQuery, type InboxFilter } from "../store/inbox";
import type { Conversation } from "../types";
import type { App } from "./app";
import { labelChip } from "./contact";
import { modeText } from "./conversation";

const SEARCH_DELAY_MS = 300; // typing pauses this long before the server is asked

export class InboxView {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "inbox-list", testid: "inbox-list", "aria-label": "Conversations" });
  private readonly status = h("p", { class: "muted", role: "status" }, "Loading…");
  private readonly keyed = new KeyedList(this.list);
  private filter: InboxFilter = {};
  private readonly labelSelect = h("select", { testid: "inbox-label", "aria-label": "Label" }, h("option", { value: "" }, "any"));

  constructor(private readonly app: App) {
    this.el = h("section", { class: "inbox", "aria-labelledby": "inbox-title" },
      h("h2", { id: "inbox-title" }, "WhatsApp inbox"), this.filters(), this.status, this.list);
    void this.load();
  }

  update(c: Change): void {
    if (c.kind === "inbox") this.render();
    else if (c.kind === "labels") this.fillLabels();
  }

  private async load(): Promise<void> {
    try {
      const r = await this.app.api.call<{ conversations: Conversation[] }>("GET", `/api/v1/wa/conversations${filterQuery(this.filter)}`);
      this.filter.found = this.filter.q ? new Set(r.conversations.map((c) => c.room_id)) : undefined;
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
      sig: JSON.stringify([c.status, c.mode, c.ai_enabled, c.assignee?.id, c.unread, c.last_message?.id, c.window_open, c.contact.name,
        c.labels?.map((l) => [l.id, l.name, l.color])]),
      make: () => this.item(c),
      inPlace: true, // a conversation that changes while it is clicked keeps the click
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
        c.labels?.length ? h("div", { class: "labels" }, ...c.labels.map((l) => labelChip(l))) : null,
        h("div", { class: "preview" }, last ? `${last.author_kind === "contact" ? "" : "↩ "}${last.body}` : ""),
        c.window_open ? null : h("div", { class: "warn small" }, "24-hour window closed")));
  }

  private fillLabels(): void {
    const labels = [...this.app.client.labels.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (this.filter.label !== undefined && !this.app.client.labels.has(this.filter.label)) this.filter.label = undefined;
    fill(this.labelSelect, h("option", { value: "" }, "any"),
      ...labels.map((l) => h("option", { value: l.id, selected: l.id === this.filter.label }, l.name)));
  }

  private filters(): HTMLElement {
    const select = (testid: string, label: string, options: [string, string][], apply: (v: string) => void) => {
      const s = h("select", { testid, "aria-label": label }, ...options.map(([v, t]) => h("option", { value: v }, t)));
      s.addEventListener("change", () => { apply(s.value); void this.load(); });
      return h("label", { class: "field inline" }, h("span", {}, label), s);
    };
    const unread = h("input", { type: "checkbox", testid: "inbox-unread" });
    unread.addEventListener("change", () => { this.filter.unread = unread.checked ? true : undefined; void this.load(); });
    const search = h("input", { type: "search", testid: "inbox-search", "aria-label": "Search conversations", maxlength: 200,
      placeholder: "Name, number or message text" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.filter.q = search.value.trim() || undefined; void this.load(); }, SEARCH_DELAY_MS);
    });
    this.labelSelect.addEventListener("change", () => {
      this.filter.label = this.labelSelect.value ? Number(this.labelSelect.value) : undefined;
      void this.load();
    });
    void this.app.client.loadLabels().then(() => this.fillLabels(), () => undefined);
    return h("div", { class: "filters", role: "group", "aria-label": "Filters" },
      h("label", { class: "field inline" }, h("span", {}, "Search"), search),
      h("label", { class: "field inline" }, h("span", {}, "Label"), this.labelSelect),
      select("inbox-status", "Status", [["", "any"], ["open", "open"], ["pending", "pending"], ["closed", "closed"]], (v) => { this.filter.status = v || undefined; }),
      select("inbox-assignee", "Assignee", [["", "anyone"], ["me", "me"], ["none", "nobody"]], (v) => { this.filter.assignee = v || undefined; }),
      select("inbox-ai", "Assistant", [["", "any"], ["true", "on"], ["false", "off"]], (v) => { this.filter.ai = v === "" ? undefined : v === "true"; }),
      h("label", { class: "check" }, unread, " unread only"));
  }
}
