// The composer's canned-reply picker (WhatsApp conversations): a listbox while `/shortcut` is
// typed at the start of the composer. ArrowUp/ArrowDown move, Enter or Tab insert the reply
// rendered for the conversation, Escape closes; the textarea keeps the focus.
import { fill, h } from "../dom";
import { cannedQuery, preview } from "../store/canned";
import type { CannedReply } from "../types";
import { listKey } from "./listkeys";

export interface CannedSource {
  /** Whether the composer is in a WhatsApp conversation (the only place canned replies apply). */
  enabled: () => boolean;
  list: (prefix: string) => Promise<CannedReply[]>;
  /** The reply's text with its variables filled in for the conversation. */
  render: (id: number) => Promise<string>;
  onError: (message: string) => void;
}

let nextId = 0;

export class CannedPicker {
  readonly el: HTMLUListElement;
  private items: CannedReply[] = [];
  private active = 0;
  private asked = 0; // the latest lookup: an older answer arriving late is dropped
  private dismissed = false; // Escape: closed until the composer no longer asks
  private readonly id = `canned-list-${++nextId}`;
  private otherControls: string | null = null; // the @-list's, given back when this list closes

  constructor(private readonly input: HTMLTextAreaElement, private readonly source: CannedSource,
              private readonly onPick: () => void = () => undefined) {
    this.el = h("ul", { class: "mention-list canned-list", id: this.id, role: "listbox", testid: "canned-list",
      "aria-label": "Canned replies", hidden: true });
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  /** After each input; resolves when the list is shown (or closed). */
  async update(): Promise<void> {
    const prefix = this.source.enabled() ? cannedQuery(this.input.value, this.input.selectionStart ?? this.input.value.length) : null;
    if (prefix === null) {
      this.dismissed = false;
      return this.close();
    }
    if (this.dismissed) return;
    const ask = ++this.asked;
    let items: CannedReply[];
    try {
      items = await this.source.list(prefix);
    } catch {
      items = [];
    }
    if (ask !== this.asked) return;
    if (!items.length) return this.close();
    // A later answer (the next key's lookup) keeps the highlighted reply when it is still listed:
    // an arrow key pressed while that lookup was out is not undone by its arrival.
    const kept = this.open ? items.findIndex((r) => r.id === this.items[this.active]?.id) : -1;
    this.items = items;
    this.active = Math.max(kept, 0);
    this.render();
  }

  /** Keys while the list is open; true when the key was the list's. */
  handleKey(e: KeyboardEvent): boolean {
    if (!this.open) return false;
    const key = listKey(e, this.items.length, this.active);
    if (key === null) return false;
    if (key.kind === "move") {
      this.active = key.index;
      this.render();
    } else if (key.kind === "pick") {
      void this.pick(this.active);
    } else {
      this.dismissed = true;
      this.close();
    }
    e.preventDefault();
    e.stopPropagation();
    return true;
  }

  close(): void {
    this.asked++;
    this.el.hidden = true;
    fill(this.el); // no stale options left in the document
    this.items = [];
    if (this.input.getAttribute("aria-controls") === this.id) {
      this.input.removeAttribute("aria-activedescendant");
      this.input.setAttribute("aria-expanded", "false");
      if (this.otherControls) this.input.setAttribute("aria-controls", this.otherControls);
      else this.input.removeAttribute("aria-controls");
    }
  }

  /** Replaces the `/shortcut` with the rendered reply. */
  async pick(index: number): Promise<void> {
    const r = this.items[index];
    if (!r) return;
    this.close();
    try {
      const text = await this.source.render(r.id);
      if (cannedQuery(this.input.value, this.input.value.length) === null) return; // the composer moved on
      this.input.value = text;
      this.input.setSelectionRange(text.length, text.length);
      this.input.focus();
      this.onPick();
    } catch (err) {
      this.source.onError((err as Error).message);
    }
  }

  private render(): void {
    fill(this.el, ...this.items.map((r, i) => h("li", {
      id: `${this.id}-${i}`, role: "option", testid: "canned-option", "data-shortcut": r.shortcut,
      "aria-selected": String(i === this.active), class: i === this.active ? "active" : "",
      onmousedown: (e) => { e.preventDefault(); void this.pick(i); },
    }, h("b", {}, `/${r.shortcut}`), " ", r.scope === "shared" ? h("small", { class: "muted" }, "shared ") : null,
    h("span", { class: "muted" }, preview(r)))));
    this.el.hidden = false;
    const controls = this.input.getAttribute("aria-controls");
    if (controls !== this.id) this.otherControls = controls;
    this.input.setAttribute("aria-controls", this.id);
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.id}-${this.active}`);
  }
}
