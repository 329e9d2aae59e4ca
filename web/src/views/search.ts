// Message search: the box in the sidebar, its results (room, author, time, snippet with the
// matched words in <mark>), and the jump from a result to the message in its room.
//
// The server sends snippets as plain text plus match offsets (Unicode code points); they become
// text nodes and <mark> elements here, so a hostile message stays text (no innerHTML).
import { ApiError } from "../api";
import type { ChatClient } from "../client";
import { fill, h, time } from "../dom";
import type { Message } from "../types";
import type { App } from "./app";

export const QUERY_MAX = 200; // the server's limit (actions/search.py QUERY_MAX)
export const PAGE = 20;
export const FLASH_MS = 2000;
/** Older history pages a jump may load to reach a message (50 messages each). */
export const JUMP_MAX_PAGES = 40;

export interface Span {
  start: number;
  end: number;
}

export interface SearchHit {
  message: Message;
  room: { id: number; name: string; kind: string };
  snippet: string;
  highlights: Span[];
  source: "hot" | "archive";
}

export interface SearchPage {
  hits: SearchHit[];
  next_cursor: string | null;
  archive_unavailable: boolean;
}

/** The request path of a search, or an error to show (checked before asking). */
export function searchPath(q: string, cursor: string | null = null, limit = PAGE): { path: string } | { error: string } {
  const text = q.trim();
  if (!text) return { error: "Type something to search for." };
  if (text.length > QUERY_MAX) return { error: `A search is at most ${QUERY_MAX} characters.` };
  const params = new URLSearchParams({ q: text, limit: String(limit) });
  if (cursor) params.set("cursor", cursor);
  return { path: `/api/v1/search?${params.toString()}` };
}

/** Text nodes and <mark> elements for a snippet; offsets count code points (as the server's do). */
export function snippetNodes(snippet: string, highlights: readonly Span[]): Node[] {
  const chars = Array.from(snippet);
  const out: Node[] = [];
  let at = 0;
  const spans = [...highlights].sort((a, b) => a.start - b.start);
  for (const s of spans) {
    const start = Math.max(at, Math.min(s.start, chars.length));
    const end = Math.max(start, Math.min(s.end, chars.length));
    if (start > at) out.push(document.createTextNode(chars.slice(at, start).join("")));
    if (end > start) out.push(h("mark", {}, chars.slice(start, end).join("")));
    at = end;
  }
  if (at < chars.length) out.push(document.createTextNode(chars.slice(at).join("")));
  return out;
}

function roomName(hit: SearchHit): string {
  return hit.room.kind === "direct" ? hit.room.name : `#${hit.room.name}`;
}

export function resultItem(hit: SearchHit, open: (hit: SearchHit) => void, now = new Date()): HTMLLIElement {
  const m = hit.message;
  return h("li", {},
    h("button", { type: "button", class: "hit", testid: "search-hit", "data-id": m.id, "data-room": hit.room.id, onclick: () => open(hit) },
      h("span", { class: "hit-head" },
        h("b", { testid: "hit-room" }, roomName(hit)), " ",
        h("span", { testid: "hit-author" }, m.author_name ?? "someone"), " ",
        h("time", { datetime: m.created_at, class: "muted" }, time(m.created_at, now)),
        hit.source === "archive" ? h("small", { class: "muted", title: "from the archive: matched as literal text" }, " archived") : null),
      h("span", { class: "snippet", testid: "hit-snippet" }, ...snippetNodes(hit.snippet, hit.highlights))));
}

/** What a jump needs from the chat: the client's history and the message elements on screen. */
export interface JumpDeps {
  client: Pick<ChatClient, "messages" | "loadOlder" | "subscribe">;
  /** The element of a message on screen, if rendered. */
  find: (messageId: number) => HTMLElement | null;
  /** Waits for the room's first page (the view opens it); false when it did not come. */
  waitLoaded?: (roomId: number) => Promise<boolean>;
}

export function waitLoaded(client: JumpDeps["client"], roomId: number, timeoutMs = 10_000): Promise<boolean> {
  if (client.messages(roomId).loaded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const stop = () => { off(); clearTimeout(timer); };
    const off = client.subscribe(() => {
      if (client.messages(roomId).loaded) { stop(); resolve(true); }
    });
    const timer = setTimeout(() => { off(); resolve(false); }, timeoutMs);
  });
}

/**
 * Brings a message into view in its (open) room: loads older history pages (before_seq) until its
 * seq is held, scrolls it to the middle and highlights it for FLASH_MS. Returns false when it
 * could not be reached (gone, or more than JUMP_MAX_PAGES pages back).
 */
export async function jumpToMessage(deps: JumpDeps, roomId: number, messageId: number, seq: number): Promise<boolean> {
  if (!(await (deps.waitLoaded ?? ((r) => waitLoaded(deps.client, r)))(roomId))) return false;
  const rm = deps.client.messages(roomId);
  for (let page = 0; page < JUMP_MAX_PAGES; page++) {
    const first = rm.firstSeq();
    if (first !== null && first <= seq) break;
    if (!rm.hasMore || !(await deps.client.loadOlder(roomId))) break;
  }
  const el = deps.find(messageId);
  if (!el) return false;
  el.scrollIntoView({ block: "center" });
  el.classList.add("flash");
  el.focus({ preventScroll: true });
  setTimeout(() => el.classList.remove("flash"), FLASH_MS);
  return true;
}

/** The search box and its results, in the sidebar. */
export class SearchBox {
  readonly el: HTMLElement;
  private readonly input = h("input", { type: "search", testid: "search-input", name: "q", maxlength: QUERY_MAX,
    placeholder: "Search messages", "aria-label": "Search messages" });
  private readonly results = h("ul", { class: "found search-results", testid: "search-results", "aria-live": "polite" });
  private readonly status = h("p", { class: "muted", testid: "search-status", role: "status" });
  private readonly more = h("button", { type: "button", testid: "search-more", hidden: true, onclick: () => void this.page() }, "More results");
  private query = "";
  private cursor: string | null = null;
  private seq = 0; // the latest search; answers of older ones are dropped

  constructor(private readonly app: Pick<App, "api" | "client" | "go" | "notice">) {
    this.el = h("div", { class: "search" },
      h("form", { role: "search", class: "people-search", onsubmit: (e) => { e.preventDefault(); void this.search(this.input.value); } },
        this.input),
      this.status, this.results, this.more);
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.reset();
    });
  }

  reset(): void {
    this.seq++;
    this.input.value = "";
    this.query = "";
    this.cursor = null;
    fill(this.results);
    this.status.textContent = "";
    this.more.hidden = true;
  }

  async search(q: string): Promise<void> {
    this.query = q;
    this.cursor = null;
    fill(this.results);
    await this.page();
  }

  private async page(): Promise<void> {
    const req = searchPath(this.query, this.cursor);
    if ("error" in req) {
      this.status.textContent = req.error;
      return;
    }
    const mine = ++this.seq;
    this.status.textContent = "Searching…";
    this.more.hidden = true;
    try {
      const page = await this.app.api.call<SearchPage>("GET", req.path);
      if (mine !== this.seq) return;
      for (const hit of page.hits) this.results.append(resultItem(hit, (x) => void this.open(x)));
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      const none = this.results.childElementCount === 0 ? "No messages found." : "";
      this.status.textContent = [none, page.archive_unavailable ? "The archive did not answer: older messages may be missing." : ""]
        .filter(Boolean).join(" ");
    } catch (e) {
      if (mine === this.seq) this.status.textContent = e instanceof ApiError || e instanceof Error ? e.message : "Search failed.";
    }
  }

  async open(hit: SearchHit): Promise<void> {
    this.app.go(`#/room/${hit.room.id}`);
    const found = await jumpToMessage({
      client: this.app.client,
      find: (id) => document.querySelector<HTMLElement>(`[data-testid=message-list] [data-testid=message][data-id="${id}"]`),
    }, hit.room.id, hit.message.id, hit.message.seq);
    if (!found) this.app.notice("That message is too far back to show here; the archive has it.");
  }
}
