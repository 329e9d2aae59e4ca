// Canned replies in the composer: typing `/` at the very start of the composer in a WhatsApp
// conversation looks up saved replies by shortcut; picking one replaces the `/shortcut` with the
// reply's text, rendered by the server for the conversation (`POST /api/v1/canned-replies/{id}/render`
// fills `{{contact.name}}` and `{{agent.name}}`).
import type { CannedReply } from "../types";

/** The shortcut prefix being typed: the composer holds only `/` and shortcut characters up to
 * the caret, and nothing after it. `null` when the composer is not asking for a canned reply. */
export function cannedQuery(text: string, caret: number): string | null {
  if (caret !== text.length) return null;
  const m = /^\/([a-z0-9_-]*)$/.exec(text);
  return m ? m[1] : null;
}

/** The path of the list for a prefix. */
export function cannedListPath(prefix: string): string {
  return `/api/v1/canned-replies?q=${encodeURIComponent(prefix)}&limit=20`;
}

/** A short preview of a reply's body for the list. */
export function preview(r: CannedReply, max = 60): string {
  const one = r.body.replace(/\s+/g, " ").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}
