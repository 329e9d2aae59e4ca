import { describe, expect, it } from "vitest";
import { Api } from "./api";
import { RoomMessages, TypingState, unreadCount } from "./store";
import type { Message } from "./types";

const msg = (id: number, seq: number, extra: Partial<Message> = {}): Message => ({
  id, room_id: 1, seq, author_id: 1, author_kind: "user", author_name: "a", body: `m${seq}`, client_id: null,
  reply_to: null, created_at: "", edited_at: null, deleted_at: null, meta: {}, ...extra,
});

describe("RoomMessages", () => {
  it("dedupes by id and orders by seq", () => {
    const r = new RoomMessages();
    r.add([msg(2, 2), msg(1, 1)]);
    r.add([msg(2, 2), msg(3, 3)]);
    expect(r.sorted().map((m) => m.seq)).toEqual([1, 2, 3]);
  });
  it("turns a pending send into the acked message", () => {
    const r = new RoomMessages();
    r.queue({ client_id: "c1", room_id: 1, body: "hi", created_at: "" });
    expect(r.pending.size).toBe(1);
    r.add([msg(5, 1, { client_id: "c1" })]);
    expect(r.pending.size).toBe(0);
  });
  it("detects a gap in seq", () => {
    const r = new RoomMessages();
    expect(r.add([msg(1, 1), msg(2, 2)])).toBe(false);
    expect(r.add([msg(5, 5)])).toBe(true);
    expect(r.add([msg(3, 3), msg(4, 4)])).toBe(false);
  });
  it("replaces edited messages", () => {
    const r = new RoomMessages();
    r.add([msg(1, 1)]);
    r.update(msg(1, 1, { body: "", deleted_at: "x" }));
    expect(r.sorted()[0].deleted_at).toBe("x");
  });
});

describe("TypingState", () => {
  it("expires entries", () => {
    const t = new TypingState();
    t.set(1, "Ann", true, 1000, 0);
    expect(t.names(500)).toEqual(["Ann"]);
    expect(t.names(1500)).toEqual([]);
  });
});

describe("unread", () => {
  it("never goes negative", () => {
    expect(unreadCount(10, 7)).toBe(3);
    expect(unreadCount(3, 7)).toBe(0);
  });
});

describe("Api", () => {
  it("refreshes on 401 and keeps the rotated refresh token", async () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v), removeItem: (k: string) => void store.delete(k) } as Storage;
    const calls: string[] = [];
    const fetcher = (async (url: string, init: RequestInit) => {
      calls.push(url);
      if (url.endsWith("/auth/refresh")) return new Response(JSON.stringify({ access_token: "new", refresh_token: "r2" }), { status: 200 });
      const auth = (init.headers as Record<string, string>).Authorization;
      if (auth === "Bearer new") return new Response(JSON.stringify({ user: { id: 1 } }), { status: 200 });
      return new Response(JSON.stringify({ error: { code: "unauthorized", message: "expired" } }), { status: 401 });
    }) as typeof fetch;
    const api = new Api("", fetcher, storage);
    api.setTokens({ access_token: "old", refresh_token: "r1" });
    const me = await api.call<{ user: { id: number } }>("GET", "/api/v1/users/me");
    expect(me.user.id).toBe(1);
    expect(store.get("chat.refresh_token")).toBe("r2");
    expect(calls).toEqual(["/api/v1/users/me", "/api/v1/auth/refresh", "/api/v1/users/me"]);
  });
});
