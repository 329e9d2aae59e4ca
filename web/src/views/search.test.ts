// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import { ChatClient } from "../client";
import { flush, mountChat, msg } from "../testing";
import type { Ack, Message } from "../types";
import type { App } from "./app";
import { FLASH_MS, jumpToMessage, resultItem, SearchBox, type SearchHit, searchPath, snippetNodes } from "./search";

const ME = { id: 1, username: "me", display_name: "Me", role: "user" as const, kind: "human" };

function hit(snippet: string, highlights: { start: number; end: number }[], extra: Partial<SearchHit> = {}): SearchHit {
  return { message: msg(7, 3, { body: snippet, author_name: "Ann <b>" }), room: { id: 1, name: "lobby", kind: "public" }, snippet, highlights,
    source: "hot", ...extra };
}

describe("snippet rendering", () => {
  it("marks the matched words with <mark> elements and keeps the rest as text", () => {
    const el = document.createElement("p");
    el.append(...snippetNodes("the otter and the otter", [{ start: 4, end: 9 }, { start: 18, end: 23 }]));
    expect(el.textContent).toBe("the otter and the otter");
    expect([...el.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["otter", "otter"]);
  });

  it("keeps hostile text as text: no element comes from the snippet", () => {
    const body = `<img src=x onerror="alert(1)"><script>alert(2)</script> trap`;
    const li = resultItem(hit(body, [{ start: body.length - 4, end: body.length }]), () => undefined);
    const snippet = li.querySelector("[data-testid=hit-snippet]")!;
    expect(snippet.textContent).toBe(body);
    expect(snippet.querySelector("img, script")).toBeNull();
    expect([...snippet.children].map((c) => c.tagName)).toEqual(["MARK"]);
    expect(li.querySelector("[data-testid=hit-author]")!.textContent).toBe("Ann <b>");
    expect(li.querySelector("b")!.textContent).toBe("#lobby");
  });

  it("counts offsets in code points, so an emoji before a match does not shift it", () => {
    const el = document.createElement("p");
    el.append(...snippetNodes("🦦 café 🦦", [{ start: 2, end: 6 }]));
    expect(el.querySelector("mark")!.textContent).toBe("café");
  });

  it("clamps offsets outside the snippet instead of throwing", () => {
    const el = document.createElement("p");
    el.append(...snippetNodes("abc", [{ start: 2, end: 99 }, { start: 1, end: 2 }]));
    expect(el.textContent).toBe("abc");
  });
});

describe("searchPath", () => {
  it("trims, bounds and carries the cursor", () => {
    expect(searchPath("  hello world ")).toEqual({ path: "/api/v1/search?q=hello+world&limit=20" });
    expect(searchPath("x", "h1.2.3", 5)).toEqual({ path: "/api/v1/search?q=x&limit=5&cursor=h1.2.3" });
    expect(searchPath("   ")).toEqual({ error: "Type something to search for." });
    expect("error" in searchPath("x".repeat(201))).toBe(true);
  });
});

describe("the search box", () => {
  afterEach(() => document.body.replaceChildren());

  it("lists the hits, pages with next_cursor and says when the archive did not answer", async () => {
    const calls: string[] = [];
    const pages = [
      { hits: [hit("one otter", [{ start: 4, end: 9 }])], next_cursor: "h5.6.7", archive_unavailable: false },
      { hits: [hit("two otters", [{ start: 4, end: 10 }], { message: msg(8, 4), source: "archive" })], next_cursor: null, archive_unavailable: true },
    ];
    const api = { call: async (_m: string, path: string) => { calls.push(path); return pages[calls.length - 1]; } };
    const box = new SearchBox({ api, client: {}, go: () => undefined, notice: () => undefined } as unknown as App);
    document.body.append(box.el);
    await box.search("otter");
    expect(document.querySelectorAll("[data-testid=search-hit]").length).toBe(1);
    const more = document.querySelector<HTMLButtonElement>("[data-testid=search-more]")!;
    expect(more.hidden).toBe(false);
    more.click();
    await flush();
    expect(calls).toEqual(["/api/v1/search?q=otter&limit=20", "/api/v1/search?q=otter&limit=20&cursor=h5.6.7"]);
    expect(document.querySelectorAll("[data-testid=search-hit]").length).toBe(2);
    expect(more.hidden).toBe(true);
    expect(document.querySelector("[data-testid=search-status]")!.textContent).toContain("archive did not answer");
  });
});

describe("jumping to a result", () => {
  /** An open room whose newest page is seqs 51..100 and whose history goes back to seq 1. */
  function room() {
    const all: Message[] = Array.from({ length: 100 }, (_, i) => msg(1000 + i + 1, i + 1));
    const sent: { event: string; data: any }[] = [];
    const emit = async <T,>(event: string, data: any): Promise<Ack<T>> => {
      sent.push({ event, data });
      if (event === "room:join") {
        return { ok: true, room: { id: 1, slug: "r", name: "room", kind: "public", topic: "", last_seq: 100 }, members: [], presence: {},
          messages: all.slice(50), has_more: true } as Ack<T>;
      }
      if (event === "history") {
        const below = all.filter((m) => m.seq < data.before_seq);
        return { ok: true, messages: below.slice(-data.limit), has_more: below.length > data.limit } as Ack<T>;
      }
      return { ok: true } as Ack<T>;
    };
    const client = new ChatClient({ me: () => ME, emit, connected: () => true, isVisible: () => true, call: async <T,>() => ({ rooms: [] }) as T });
    mountChat(client, ME);
    const find = (id: number) => document.querySelector<HTMLElement>(`[data-testid=message][data-id="${id}"]`);
    return { client, sent, find };
  }

  afterEach(() => {
    vi.useRealTimers();
    document.body.replaceChildren();
  });

  it("loads the history page holding the message (before_seq), scrolls to it and highlights it briefly", async () => {
    const { client, sent, find } = room();
    await flush();
    expect(find(1010)).toBeNull(); // seq 10: not in the first page
    const scrolled: Element[] = [];
    const original = Element.prototype.scrollIntoView;
    Element.prototype.scrollIntoView = function (this: Element) { scrolled.push(this); };
    try {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      expect(await jumpToMessage({ client, find }, 1, 1010, 10)).toBe(true);
      const el = find(1010)!;
      expect(sent.filter((s) => s.event === "history").map((s) => s.data.before_seq)).toEqual([51]);
      expect(scrolled).toEqual([el]);
      expect(el.classList.contains("flash")).toBe(true);
      vi.advanceTimersByTime(FLASH_MS);
      expect(el.classList.contains("flash")).toBe(false);
    } finally {
      Element.prototype.scrollIntoView = original;
    }
  });

  it("loads nothing more when the message is already on screen", async () => {
    const { client, sent, find } = room();
    await flush();
    Element.prototype.scrollIntoView ??= () => undefined;
    expect(await jumpToMessage({ client, find }, 1, 1090, 90)).toBe(true);
    expect(sent.some((s) => s.event === "history")).toBe(false);
  });

  it("answers false for a message the room no longer holds", async () => {
    const { client, find } = room();
    await flush();
    expect(await jumpToMessage({ client, find }, 1, 999_999, 5)).toBe(false);
  });
});
