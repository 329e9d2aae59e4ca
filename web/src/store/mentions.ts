// The composer's @-autocomplete, without DOM: what is being typed, who matches, and the text
// after picking someone.
import type { User } from "../types";

export interface MentionQuery {
  /** Index of the '@'. */
  start: number;
  /** What follows it up to the caret, as typed. */
  query: string;
}

export interface Candidate {
  username: string;
  label: string;
  kind: "user" | "assistant" | "everyone";
}

export const MAX_CANDIDATES = 8;
// as the server reads mentions: an '@' at the start or after a character that is not a word
// character or '@', then what may be part of a username
const TYPING = /(^|[^\w@])@([A-Za-z0-9_.-]{0,32})$/;

/** The mention being typed just before the caret, if any. */
export function mentionAt(text: string, caret: number): MentionQuery | null {
  const m = TYPING.exec(text.slice(0, caret));
  if (!m) return null;
  return { start: caret - m[2].length - 1, query: m[2] };
}

/** Members (and the assistant, and @room / @here for those who may use them) matching `query`:
 * usernames that start with it first, then names that contain it. The user is left out. */
export function candidates(query: string, members: readonly User[], opts: { meId: number; broadcast: boolean }): Candidate[] {
  const q = query.toLowerCase();
  const pool: Candidate[] = members.filter((u) => u.id !== opts.meId && u.kind !== "contact")
    .map((u) => ({ username: u.username, label: u.display_name, kind: u.kind === "assistant" ? "assistant" : "user" }));
  if (!pool.some((c) => c.username.toLowerCase() === "assistant")) pool.push({ username: "assistant", label: "Assistant", kind: "assistant" });
  if (opts.broadcast) {
    pool.push({ username: "room", label: "Everyone in the room", kind: "everyone" });
    pool.push({ username: "here", label: "Everyone online now", kind: "everyone" });
  }
  const starts = pool.filter((c) => c.username.toLowerCase().startsWith(q));
  const contains = pool.filter((c) => !starts.includes(c) && (c.username.toLowerCase().includes(q) || c.label.toLowerCase().includes(q)));
  return [...starts, ...contains].slice(0, MAX_CANDIDATES);
}

/** The text with the mention being typed replaced by `@username `, and the caret after it. */
export function insertMention(text: string, at: MentionQuery, caret: number, username: string): { text: string; caret: number } {
  const inserted = `@${username} `;
  const rest = text.slice(caret).replace(/^[A-Za-z0-9_.-]*/, "").replace(/^ /, "");
  return { text: text.slice(0, at.start) + inserted + rest, caret: at.start + inserted.length };
}
