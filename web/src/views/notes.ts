// Private notes beside a WhatsApp conversation (staff): what colleagues wrote for each other,
// marked as staff-only, and a form to add one. Notes are shown apart from the messages and
// never go through the message composer, so one cannot be sent to the contact by mistake.
import { fill, h } from "../dom";
import type { Note } from "../types";
import type { App } from "./app";

export function noteItem(n: Note): HTMLElement {
  return h("li", { class: "note", testid: "note", "data-note": n.id },
    h("span", { class: "note-tag", "aria-label": "Private note, staff only" }, "Private note · staff only"),
    h("strong", {}, n.author.display_name), " ",
    h("time", { datetime: n.created_at }, new Date(n.created_at).toLocaleString()),
    h("p", { class: "note-body" }, n.body));
}

export class NotesPanel {
  private readonly list = h("ul", { class: "notes-list", testid: "notes-list" });
  private readonly input = h("textarea", { testid: "note-input", rows: 2, "aria-label": "Private note (staff only)",
    placeholder: "Private note: only staff see it", maxlength: 4000 });
  readonly el: HTMLElement;

  constructor(private readonly app: App, private readonly roomId: number) {
    const form = h("form", { class: "note-form", onsubmit: (e) => { e.preventDefault(); void this.submit(); } },
      this.input, h("button", { type: "submit", testid: "note-add" }, "Add note"));
    this.el = h("section", { class: "notes", testid: "notes", "aria-label": "Private notes (staff only)" },
      h("h3", {}, "Private notes"), this.list, form);
    this.render();
    void app.client.loadNotes(roomId).catch((err: Error) => app.notice(err.message));
  }

  render(): void {
    const notes = this.app.client.notes.get(this.roomId) ?? [];
    fill(this.list, ...(notes.length ? notes.map(noteItem) : [h("li", { class: "empty" }, "No notes yet.")]));
  }

  private async submit(): Promise<void> {
    const body = this.input.value.trim();
    if (!body) return;
    try {
      await this.app.client.addNote(this.roomId, body);
      this.input.value = "";
    } catch (err) {
      this.app.notice((err as Error).message);
    }
  }
}
