// Under a message's body: its reactions grouped by emoji with counts (highlighted where this
// user reacted, a title naming who), a small picker of common emojis, and "seen by".
//
// Emoji strings come from other users: they only ever become text nodes, like message bodies.
import { h } from "../dom";
import { PICKER_EMOJIS, reactionsOf, reactionsSig, reactorsText, type MyReactions } from "../store/reactions";
import type { Message } from "../types";

export interface ReactionContext {
  meId: number | null;
  mine: MyReactions;
  nameOf: (userId: number) => string | undefined;
  /** The message whose picker is open, if any. */
  pickerFor: number | null;
  onToggle: (m: Message, emoji: string) => void;
  onPicker: (m: Message | null) => void;
  /** "Seen" / "Seen by Ann, Bob +2" under this message, or "". */
  seen: (m: Message) => string;
}

/** The reaction chips and, when open, the picker; null when there is nothing to show. */
export function reactionBar(m: Message, ctx: ReactionContext): HTMLElement | null {
  const list = reactionsOf(m);
  const open = ctx.pickerFor === m.id && !m.deleted_at;
  if (!list.length && !open) return null;
  const chips = list.map((r) => {
    const mine = ctx.mine.has(m.id, r, ctx.meId);
    const who = reactorsText(r, ctx.nameOf, ctx.meId);
    return h("button", {
      type: "button", testid: "reaction", class: `reaction${mine ? " mine" : ""}`, "data-emoji": r.emoji,
      "aria-pressed": mine ? "true" : "false", title: who, "aria-label": `${r.emoji} ${r.count}: ${who}`,
      onclick: () => ctx.onToggle(m, r.emoji),
    }, h("span", { class: "emoji" }, r.emoji), " ", h("span", { class: "count" }, r.count));
  });
  return h("div", { class: "reactions", testid: "reactions" }, ...chips, open ? picker(m, ctx) : null);
}

function picker(m: Message, ctx: ReactionContext): HTMLElement {
  return h("div", { class: "picker", role: "menu", testid: "reaction-picker", "aria-label": "Add a reaction",
    onkeydown: (e) => { if ((e as KeyboardEvent).key === "Escape") ctx.onPicker(null); } },
  ...PICKER_EMOJIS.map((emoji) => h("button", {
    type: "button", role: "menuitem", testid: "pick", "data-emoji": emoji, "aria-label": `React with ${emoji}`,
    onclick: () => { ctx.onPicker(null); ctx.onToggle(m, emoji); },
  }, emoji)));
}

/** The action-bar button that opens (or closes) the picker. */
export function reactButton(m: Message, ctx: ReactionContext): HTMLButtonElement {
  const open = ctx.pickerFor === m.id;
  return h("button", { type: "button", testid: "react", "aria-label": "Add a reaction", "aria-expanded": open ? "true" : "false",
    onclick: () => ctx.onPicker(open ? null : m) }, "React");
}

/** "Seen…" under the user's own last message, in rooms with read receipts. */
export function seenLine(m: Message, ctx: ReactionContext): HTMLElement | null {
  const text = ctx.seen(m);
  return text ? h("div", { class: "seen muted", testid: "seen-by" }, text) : null;
}

/** What changes the look of the part under the body; equal signatures reuse the element. */
export function reactionPartSig(m: Message, ctx: ReactionContext | undefined): string {
  if (!ctx) return "";
  const mine = reactionsOf(m).filter((r) => ctx.mine.has(m.id, r, ctx.meId)).map((r) => r.emoji).join(",");
  const names = reactionsOf(m).flatMap((r) => r.user_ids.map((id) => ctx.nameOf(id) ?? "")).join(",");
  return [reactionsSig(m), mine, names, ctx.pickerFor === m.id, ctx.seen(m)].join("\u0001");
}
