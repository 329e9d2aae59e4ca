import { describe, expect, it } from "vitest";
import { ChatClient } from "./client";
import type { Room } from "./types";

const ME = { id: 1, username: "me", display_name: "Me", role: "user" as const, kind: "human" };

function dm(id: number, peer: Room["peer"]): Room {
  return { id, slug: `dm-${id}`, name: "dm", kind: "direct", topic: "", last_seq: 0, joined: true, peer };
}

function client(rooms: Room[]): ChatClient {
  return new ChatClient({
    me: () => ME,
    emit: async () => ({ ok: false, error: { code: "offline", message: "offline" } }),
    connected: () => true,
    isVisible: () => false,
    call: async <T,>() => ({ rooms, has_more: false, next_cursor: null }) as T,
    setTimeout: () => undefined,
  });
}

describe("DM presence on load", () => {
  it("seeds every DM peer's presence from the room list, before any DM is opened", async () => {
    const c = client([
      dm(10, { id: 2, name: "Ann", kind: "human", status: "online", last_seen: null }),
      dm(11, { id: 3, name: "Bob", kind: "human", status: "offline", last_seen: "2026-11-23T11:55:00Z" }),
      dm(12, { id: 4, name: "Assistant", kind: "assistant", status: "offline", last_seen: null }),
    ]);
    await c.refreshRooms();
    expect(c.presence.isOnline(2)).toBe(true);
    expect(c.presence.describe(3, Date.parse("2026-11-23T12:00:00Z"))).toBe("last seen 5 min ago");
    // the assistant is always available
    expect(c.presence.isOnline(4)).toBe(true);
  });

  it("then follows presence events", async () => {
    const c = client([dm(10, { id: 2, name: "Ann", kind: "human", status: "online", last_seen: null })]);
    await c.refreshRooms();
    c.onPresence({ user_id: 2, status: "offline", last_seen: "2026-11-23T12:00:00Z" });
    expect(c.presence.isOnline(2)).toBe(false);
  });

  it("drops a room it was removed from, or that was deleted", async () => {
    const c = client([dm(10, { id: 2, name: "Ann" }), { id: 20, slug: "x", name: "x", kind: "public", topic: "", last_seq: 0, joined: true }]);
    await c.refreshRooms();
    c.onRoomGone(20);
    expect(c.rooms.get(20)).toBeUndefined();
    c.onRoomUpdated({ id: 10, slug: "dm-10", name: "renamed", kind: "direct", topic: "t", last_seq: 3 });
    expect(c.rooms.get(10)?.peer?.name).toBe("Ann");
    expect(c.rooms.get(10)?.joined).toBe(true);
  });
});
