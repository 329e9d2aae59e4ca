// The composer's @-autocomplete: a listbox under the composer while an @name is being typed.
// ArrowUp/ArrowDown move, Enter or Tab pick, Escape closes; the textarea keeps the focus
// (aria-activedescendant points at the highlighted option).
import { fill, h } from "../dom";
import { type Candidate, candidates, insertMention, mentionAt, type MentionQuery } from "../store/mentions";
import type { User } from "../types";
import { listKey } from "./listkeys";

let nextId = 0;

export class MentionPicker {
  readonly el: HTMLUListElement;
  private items: Candidate[] = [];
  private active = 0;
  private at: MentionQuery | null = null;
  private dismissedAt: number | null = null; // Escape: stay closed for this '@'
  private readonly id = `mention-list-${++nextId}`;

  constructor(
    private readonly input: HTMLTextAreaElement,
    private readonly source: () => { members: readonly User[]; meId: number; broadcast: boolean },
    private readonly onPick: () => void = () => undefined,
  ) {
    this.el = h("ul", { class: "mention-list", id: this.id, role: "listbox", testid: "mention-list", "aria-label": "People to mention", hidden: true });
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", this.id);
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  /** After each input or caret move. */
  update(): void {
    const caret = this.input.selectionStart ?? this.input.value.length;
    const at = mentionAt(this.input.value, caret);
    if (!at || at.start === this.dismissedAt) {
      if (!at) this.dismissedAt = null;
      return this.close();
    }
    const src = this.source();
    const items = candidates(at.query, src.members, { meId: src.meId, broadcast: src.broadcast });
    if (!items.length) return this.close();
    const same = this.at?.start === at.start;
    this.at = at;
    this.items = items;
    if (!same || this.active >= items.length) this.active = 0;
    this.render();
  }

  /** When the room's members change: the @name being typed is matched again, so a list opens
   * (or narrows) once the members have loaded: one typed before matched only the assistant, or
   * nobody, until the next key. Nothing while the composer has no focus. */
  refresh(): void {
    if (this.input.ownerDocument.activeElement === this.input) this.update();
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
      this.pick(this.active);
    } else {
      this.dismissedAt = this.at?.start ?? null;
      this.close();
    }
    e.preventDefault();
    e.stopPropagation();
    return true;
  }

  close(): void {
    this.el.hidden = true;
    fill(this.el); // no stale options left in the document
    this.items = [];
    this.at = null;
    this.input.removeAttribute("aria-activedescendant");
    this.input.setAttribute("aria-expanded", "false");
  }

  private pick(index: number): void {
    const c = this.items[index];
    if (!c || !this.at) return;
    const caret = this.input.selectionStart ?? this.input.value.length;
    const next = insertMention(this.input.value, this.at, caret, c.username);
    this.input.value = next.text;
    this.input.setSelectionRange(next.caret, next.caret);
    this.close();
    this.input.focus();
    this.onPick();
  }

  private render(): void {
    fill(this.el, ...this.items.map((c, i) => h("li", {
      id: `${this.id}-${i}`, role: "option", testid: "mention-option", "data-username": c.username,
      "aria-selected": String(i === this.active), class: i === this.active ? "active" : "",
      // mousedown, not click: the textarea keeps the focus
      onmousedown: (e) => { e.preventDefault(); this.pick(i); },
    }, h("b", {}, `@${c.username}`), " ", h("span", { class: "muted" }, c.kind === "everyone" ? c.label : c.kind === "assistant" ? "assistant" : c.label))));
    this.el.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `${this.id}-${this.active}`);
  }
}
