// The contacts page (staff and up): every WhatsApp contact of the desk, newest first, searched by
// name, email or number and filtered by label on the server (`GET /api/v1/contacts?q=&label=`),
// a page at a time ("More contacts" follows `next_cursor`). Each row shows the contact's labels
// and opens the contact by itself (`#/contacts/<id>`: the contact panel of contact.ts, with their
// conversations). Rows are kept live by `contact:updated` and `label:*` through the client's
// contact and label maps.
import type { Change } from "../client";
import { fill, h, KeyedList } from "../dom";
import type { Contact } from "../types";
import type { App } from "./app";
import { ContactPanel, labelChip } from "./contact";

export const CONTACTS_PAGE = 50;
const SEARCH_DELAY_MS = 300; // typing pauses this long before the server is asked

export interface ContactsFilter {
  q?: string;
  label?: number;
}

/** The path of one page of contacts: only the filters set, and the cursor of the page before. */
export function contactsPath(f: ContactsFilter, cursor: number | null = null, limit = CONTACTS_PAGE): string {
  const q = new URLSearchParams();
  const text = f.q?.trim();
  if (text) q.set("q", text);
  if (f.label !== undefined) q.set("label", String(f.label));
  if (cursor !== null) q.set("cursor", String(cursor));
  q.set("limit", String(limit));
  return `/api/v1/contacts?${q.toString()}`;
}

/** How a contact is named in lists: the name, else the number, else its id. */
export function contactName(c: Pick<Contact, "id" | "name" | "phone">): string {
  return c.name.trim() || c.phone || `Contact ${c.id}`;
}

export class ContactsView {
  readonly el: HTMLElement;
  private readonly body = h("tbody", { testid: "contacts-list" });
  private readonly keyed = new KeyedList(this.body);
  private readonly status = h("p", { class: "muted", role: "status", testid: "contacts-status" }, "Loading…");
  private readonly more = h("button", { type: "button", testid: "contacts-more", hidden: true }, "More contacts");
  private readonly labelSelect = h("select", { testid: "contacts-label", "aria-label": "Label" }, h("option", { value: "" }, "any"));
  private filter: ContactsFilter = {};
  private ids: number[] = [];
  private cursor: number | null = null;
  /** Answers to an older search are dropped: only the newest request may fill the list. */
  private seq = 0;

  constructor(private readonly app: App) {
    this.more.addEventListener("click", () => void this.load(true));
    this.el = h("section", { class: "contacts", "aria-labelledby": "contacts-title" },
      h("h2", { id: "contacts-title" }, "Contacts"), this.filters(), this.status,
      h("div", { class: "table-wrap" }, h("table", { testid: "contacts-table" },
        h("thead", {}, h("tr", {}, ...["Name", "Phone", "Email", "Labels"].map((t) => h("th", { scope: "col" }, t)))),
        this.body)),
      this.more);
    void this.load(false);
  }

  update(c: Change): void {
    if (c.kind === "labels") {
      this.fillLabels();
      this.render();
    } else if (c.kind === "contact" && this.ids.includes(c.contactId)) this.render();
  }

  private async load(next: boolean): Promise<void> {
    const seq = ++this.seq;
    try {
      const r = await this.app.api.call<{ contacts: Contact[]; next_cursor: number | null }>(
        "GET", contactsPath(this.filter, next ? this.cursor : null));
      if (seq !== this.seq) return;
      // kept in the client's map, so `contact:updated` and `label:*` reach the rows shown
      for (const c of r.contacts) this.app.client.contacts.set(c.id, c);
      const fresh = r.contacts.map((c) => c.id);
      this.ids = next ? [...this.ids, ...fresh.filter((id) => !this.ids.includes(id))] : fresh;
      this.cursor = r.next_cursor;
      this.more.hidden = r.next_cursor === null;
      this.render();
    } catch (err) {
      if (seq === this.seq) this.status.textContent = (err as Error).message;
    }
  }

  private render(): void {
    const shown = this.ids.map((id) => this.app.client.contacts.get(id)).filter((c): c is Contact => c !== undefined);
    this.status.textContent = shown.length ? "" : this.filter.q || this.filter.label !== undefined ? "No contact matches." : "No contacts yet.";
    this.keyed.render(shown.map((c) => ({
      key: String(c.id),
      sig: JSON.stringify([c.name, c.phone, c.email, c.labels.map((l) => [l.id, l.name, l.color])]),
      make: () => this.row(c),
    })));
  }

  private row(c: Contact): HTMLElement {
    return h("tr", { testid: "contact-row", "data-contact": c.id },
      h("th", { scope: "row" }, h("a", { href: `#/contacts/${c.id}`, testid: "contact-open" }, contactName(c))),
      h("td", { testid: "contact-row-phone" }, c.phone ?? ""),
      h("td", {}, c.email ?? ""),
      h("td", { class: "labels" }, ...c.labels.map((l) => labelChip(l))));
  }

  private fillLabels(): void {
    const labels = [...this.app.client.labels.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (this.filter.label !== undefined && !this.app.client.labels.has(this.filter.label)) {
      this.filter.label = undefined;
      void this.load(false);
    }
    fill(this.labelSelect, h("option", { value: "" }, "any"),
      ...labels.map((l) => h("option", { value: l.id, selected: l.id === this.filter.label }, l.name)));
  }

  private filters(): HTMLElement {
    const search = h("input", { type: "search", testid: "contacts-search", "aria-label": "Search contacts", maxlength: 200,
      placeholder: "Name, email or number" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.filter.q = search.value.trim() || undefined; void this.load(false); }, SEARCH_DELAY_MS);
    });
    this.labelSelect.addEventListener("change", () => {
      this.filter.label = this.labelSelect.value ? Number(this.labelSelect.value) : undefined;
      void this.load(false);
    });
    void this.app.client.loadLabels().then(() => this.fillLabels(), () => undefined);
    return h("form", { class: "filters", role: "search", "aria-label": "Find contacts", onsubmit: (e) => {
      e.preventDefault();
      clearTimeout(timer);
      this.filter.q = search.value.trim() || undefined;
      void this.load(false);
    } },
    h("label", { class: "field inline" }, h("span", {}, "Search"), search),
    h("label", { class: "field inline" }, h("span", {}, "Label"), this.labelSelect));
  }
}

/** One contact by itself (`#/contacts/<id>`): the contact panel, titled with their name. */
export class ContactPage {
  readonly el: HTMLElement;
  private readonly title = h("h2", { id: "contact-title", testid: "contact-title" }, "Contact");
  private readonly panel: ContactPanel;

  constructor(app: App, private readonly contactId: number) {
    this.panel = new ContactPanel(app, contactId);
    this.panel.onShow = (c) => { this.title.textContent = contactName(c); };
    this.el = h("section", { class: "contact-page", "aria-labelledby": "contact-title" },
      h("a", { href: "#/contacts", testid: "contacts-back" }, "‹ Contacts"), this.title, this.panel.el);
  }

  update(c: Change): void {
    if (c.kind === "labels" || (c.kind === "contact" && c.contactId === this.contactId)) this.panel.refresh();
  }
}
