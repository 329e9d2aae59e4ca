// The contact panel beside a WhatsApp conversation (staff): who the person is across numbers and
// conversations. Name (editable; a name set here is kept over later WhatsApp profile names),
// phone (from WhatsApp), email, notes and attributes (editable), labels (put on, taken off) and
// their conversations on every business number. Kept live by `contact:updated`. It is opened
// beside a conversation (chat.ts) or by itself from the contacts page (contacts.ts).
import { fill, h, time } from "../dom";
import type { Contact, Conversation, Label } from "../types";
import type { App } from "./app";

/** `key=value` lines -> an attributes object (numbers and true/false/null as such); throws on a bad line. */
export function parseAttributes(text: string): Contact["attributes"] {
  const out: Contact["attributes"] = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`"${line}": write attributes as name=value`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    out[key] = value === "true" ? true : value === "false" ? false : value === "null" ? null
      : /^-?\d+(\.\d+)?$/.test(value) && value.length < 16 ? Number(value) : value;
  }
  return out;
}

export function formatAttributes(attrs: Contact["attributes"]): string {
  return Object.entries(attrs).map(([k, v]) => `${k}=${v === null ? "null" : String(v)}`).join("\n");
}

export function labelChip(l: Pick<Label, "id" | "name" | "color">, remove?: () => void): HTMLElement {
  const chip = h("span", { class: "label-chip", testid: "label-chip", "data-label": l.id },
    h("span", { class: "swatch", "aria-hidden": "true" }), l.name,
    remove ? h("button", { type: "button", class: "chip-remove", testid: "label-remove", "aria-label": `Remove label ${l.name}`, onclick: remove }, "×") : null);
  // only a well-formed colour becomes a style value
  if (/^#[0-9a-fA-F]{6}$/.test(l.color)) chip.style.setProperty("--label", l.color);
  return chip;
}

export class ContactPanel {
  readonly el: HTMLElement;
  private readonly body = h("div", { class: "contact-body" });
  private readonly name = h("input", { testid: "contact-name", "aria-label": "Contact name", maxlength: 200 });
  private readonly email = h("input", { testid: "contact-email", type: "email", "aria-label": "Email", maxlength: 254 });
  private readonly notes = h("textarea", { testid: "contact-notes", rows: 2, "aria-label": "Notes about the contact", maxlength: 4000 });
  private readonly attrs = h("textarea", { testid: "contact-attributes", rows: 2, "aria-label": "Attributes, one name=value a line" });
  private readonly phone = h("span", { testid: "contact-phone" });
  private readonly status = h("p", { class: "muted small", role: "status", testid: "contact-status" });
  private readonly history = h("ul", { class: "contact-conversations", testid: "contact-conversations" });
  private readonly labels = h("div", { class: "labels", testid: "contact-labels" });
  private readonly addLabel = h("select", { testid: "contact-label-add", "aria-label": "Add a label" });
  private contact: Contact | null = null;
  private dirty = false;
  readonly contactId: number | null;
  /** The conversation it is shown beside (marked in the list of conversations), if any. */
  private readonly roomId: number | null;
  /** Told each version of the contact shown (the contacts page titles itself with the name). */
  onShow: ((c: Contact) => void) | null = null;

  /** Beside a conversation, or by itself for a contact id (the contacts page). */
  constructor(private readonly app: App, of: Conversation | number) {
    this.contactId = typeof of === "number" ? of : of.contact.id ?? null;
    this.roomId = typeof of === "number" ? null : of.room_id;
    const form = h("form", { class: "contact-form", onsubmit: (e) => { e.preventDefault(); void this.save(); } },
      h("label", { class: "field" }, h("span", {}, "Name"), this.name),
      h("p", { class: "small" }, "Phone: ", this.phone),
      h("label", { class: "field" }, h("span", {}, "Email"), this.email),
      h("label", { class: "field" }, h("span", {}, "Notes"), this.notes),
      h("label", { class: "field" }, h("span", {}, "Attributes (name=value)"), this.attrs),
      h("button", { type: "submit", testid: "contact-save" }, "Save"), this.status);
    for (const input of [this.name, this.email, this.notes, this.attrs]) input.addEventListener("input", () => { this.dirty = true; });
    this.addLabel.addEventListener("change", () => {
      const id = Number(this.addLabel.value);
      if (id) void this.label(id, true);
    });
    this.el = h("aside", { class: "contact-panel", testid: "contact-panel", "aria-label": "Contact" },
      h("h3", {}, "Contact"), this.body);
    fill(this.body, form, h("h4", {}, "Labels"), this.labels, this.addLabel, h("h4", {}, "Conversations"), this.history);
    void this.load();
  }

  /** A live change: the contact (`contact:updated`) or the labels. */
  refresh(): void {
    const id = this.contactId;
    const c = id === null ? undefined : this.app.client.contacts.get(id);
    if (c) this.show(c);
    else this.renderLabels();
  }

  private async load(): Promise<void> {
    const id = this.contactId;
    if (id === null) {
      fill(this.body, h("p", { class: "muted" }, "No contact record for this conversation."));
      return;
    }
    try {
      const [r, convs] = await Promise.all([
        this.app.api.call<{ contact: Contact }>("GET", `/api/v1/contacts/${id}`),
        this.app.api.call<{ conversations: Conversation[] }>("GET", `/api/v1/contacts/${id}/conversations`),
        this.app.client.loadLabels().catch(() => []),
      ]);
      this.app.client.contacts.set(id, r.contact);
      this.show(r.contact, true);
      fill(this.history, ...convs.conversations.map((c) => h("li", {},
        h("a", { href: `#/room/${c.room_id}`, testid: "contact-conversation", "aria-current": c.room_id === this.roomId ? "page" : null },
          `${c.business_phone ?? ""} · ${c.status}`, " ", h("time", { datetime: c.updated_at ?? "" }, time(c.updated_at ?? null))))));
    } catch (err) {
      this.status.textContent = (err as Error).message;
    }
  }

  private show(c: Contact, force = false): void {
    this.contact = c;
    // a live update does not overwrite what staff are typing
    if (force || !this.dirty) {
      this.name.value = c.name;
      this.email.value = c.email ?? "";
      this.notes.value = c.notes;
      this.attrs.value = formatAttributes(c.attributes);
      this.dirty = false;
    }
    this.phone.textContent = c.phone ?? "—";
    this.renderLabels();
    this.onShow?.(c);
  }

  private renderLabels(): void {
    const c = this.contact;
    if (!c) return;
    fill(this.labels, ...(c.labels.length ? c.labels.map((l) => labelChip(l, () => void this.label(l.id, false))) : [h("span", { class: "muted small" }, "No labels.")]));
    const have = new Set(c.labels.map((l) => l.id));
    const choices = [...this.app.client.labels.values()].filter((l) => !have.has(l.id)).sort((a, b) => a.name.localeCompare(b.name));
    fill(this.addLabel, h("option", { value: "" }, "Add a label…"), ...choices.map((l) => h("option", { value: l.id }, l.name)));
  }

  private async label(labelId: number, on: boolean): Promise<void> {
    const id = this.contactId;
    if (id === null) return;
    try {
      const r = await this.app.api.call<{ contact: Contact }>(on ? "PUT" : "DELETE", `/api/v1/contacts/${id}/labels/${labelId}`);
      this.app.client.onContact(r.contact);
    } catch (err) {
      this.app.notice((err as Error).message);
    }
  }

  private async save(): Promise<void> {
    const c = this.contact;
    if (!c) return;
    let attributes: Contact["attributes"];
    try {
      attributes = parseAttributes(this.attrs.value);
    } catch (err) {
      this.status.textContent = (err as Error).message;
      return;
    }
    const patch: Record<string, unknown> = {};
    const name = this.name.value.trim();
    if (name && name !== c.name) patch.name = name;
    if (this.email.value.trim() !== (c.email ?? "")) patch.email = this.email.value.trim();
    if (this.notes.value !== c.notes) patch.notes = this.notes.value;
    if (JSON.stringify(attributes) !== JSON.stringify(c.attributes)) patch.attributes = attributes;
    if (!Object.keys(patch).length) {
      this.status.textContent = "Nothing to save.";
      return;
    }
    try {
      const r = await this.app.api.call<{ contact: Contact }>("PATCH", `/api/v1/contacts/${c.id}`, patch);
      this.dirty = false;
      this.app.client.onContact(r.contact);
      this.show(r.contact, true);
      this.status.textContent = "Saved.";
    } catch (err) {
      this.status.textContent = (err as Error).message;
    }
  }
}
