// Emoji reactions as the client holds them.
//
// A message record's `reactions` is broadcast, so it cannot say whether this user reacted: it
// names only the first 10 reactors of each emoji (`user_ids`) and counts them all (`count`).
// Where `user_ids` is complete (count <= its length) it is the truth; past that, the client
// remembers what the server told it in its own `message:react` acks (`mine`, exact), and
// otherwise assumes it did not react (a click then adds, which the server treats as a no-op
// if the reaction was there).
import type { Message, Reaction } from "../types";

/** The emojis offered by the picker: common ones, kept short on purpose. */
export const PICKER_EMOJIS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "🔥", "👀", "✅"] as const;

/** The reactions of a message: [] when it has none, is deleted, or came from an older server. */
export function reactionsOf(m: { reactions?: Reaction[] | null; deleted_at?: string | null }): Reaction[] {
  return !m.deleted_at && Array.isArray(m.reactions) ? m.reactions : [];
}

/** A short signature of a message's reactions, for re-rendering only when they change. */
export function reactionsSig(m: Message): string {
  return reactionsOf(m).map((r) => `${r.emoji}:${r.count}:${r.user_ids.join(",")}`).join(" ");
}

export class MyReactions {
  /** message id -> the emojis this user has on it, as the last `message:react` ack said */
  private readonly byMessage = new Map<number, Set<string>>();

  set(messageId: number, mine: readonly string[]): void {
    this.byMessage.set(messageId, new Set(mine));
  }

  /** Whether `meId` reacted with `r.emoji` to message `messageId`. */
  has(messageId: number, r: Reaction, meId: number | null): boolean {
    if (meId === null) return false;
    if (r.user_ids.includes(meId)) return true;
    if (r.count <= r.user_ids.length) return false; // the list is complete
    return this.byMessage.get(messageId)?.has(r.emoji) ?? false;
  }
}

/** "Ann, Bob and 3 others" for a reaction's tooltip; unknown members are "someone". */
export function reactorsText(r: Reaction, nameOf: (userId: number) => string | undefined, meId: number | null): string {
  const names = r.user_ids.map((id) => (id === meId ? "you" : nameOf(id) ?? "someone"));
  const others = r.count - names.length;
  if (others > 0) names.push(`${others} other${others === 1 ? "" : "s"}`);
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
