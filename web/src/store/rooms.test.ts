import { describe, expect, it } from "vitest";
import { msg } from "../testing";
import type { Conversation, Room } from "../types";
import { RoomList, roomLabel, roomTitle, unreadCount } from "./rooms";

const room = (id: number, extra: Partial<Room> = {}): Room => ({ id, slug: `r${id}`, name: `room ${id}`, kind: "public", topic: "", last_seq: 0, joined: true, ...extra });

describe("unread counts", () => {
  it("come from the list as last_seq - last_read_seq, never negative", () => {
    expect(unreadCount(10, 7)).toBe(3);
    expect(unreadCount(3, 7)).toBe(0);
    const list = new RoomList();
    list.setAll([{ ...room(1, { last_seq: 10, last_read_seq: 4 }), unread: undefined }]);
    expect(list.get(1)?.unread).toBe(6);
  });

  it("count messages from others in rooms not on screen", () => {
    const list = new RoomList();
    list.setAll([room(1, { last_seq: 2, unread: 0 })]);
    expect(list.onMessage(msg(3, 3, { room_id: 1, author_id: 2 }), 1, false)).toBe(true);
    expect(list.onMessage(msg(4, 4, { room_id: 1, author_id: 2 }), 1, false)).toBe(true);
    expect(list.get(1)?.unread).toBe(2);
    expect(list.totalUnread()).toBe(2);
  });

  it("do not count own messages, visible rooms, or a replay of a seq already seen", () => {
    const list = new RoomList();
    list.setAll([room(1, { last_seq: 2, unread: 0 })]);
    list.onMessage(msg(3, 3, { room_id: 1, author_id: 1 }), 1, false);
    list.onMessage(msg(4, 4, { room_id: 1, author_id: 2 }), 1, true);
    expect(list.onMessage(msg(4, 4, { room_id: 1, author_id: 2 }), 1, false)).toBe(false);
    expect(list.get(1)?.unread).toBe(0);
    expect(list.get(1)?.last_seq).toBe(4);
  });

  it("do not count in public rooms the user has not joined", () => {
    const list = new RoomList();
    list.setAll([room(1, { joined: false })]);
    list.onMessage(msg(1, 1, { room_id: 1, author_id: 2 }), 1, false);
    expect(list.get(1)?.unread).toBe(0);
  });

  it("drop to what is left after reading", () => {
    const list = new RoomList();
    list.setAll([room(1, { last_seq: 10, last_read_seq: 0, unread: 10 })]);
    list.markRead(1, 7);
    expect(list.get(1)?.unread).toBe(3);
    list.markRead(1, 10);
    expect(list.get(1)?.unread).toBe(0);
  });
});

describe("RoomList", () => {
  it("splits rooms, DMs and public rooms to join, unread first", () => {
    const list = new RoomList();
    list.setAll([
      room(1, { name: "b" }), room(2, { name: "a" }), room(3, { name: "c", unread: 2 }),
      room(4, { kind: "direct", name: "x, y", peer: { id: 9, name: "Yan" } }),
      room(5, { joined: false, name: "open" }), room(6, { kind: "whatsapp", name: "wa" }),
    ]);
    const s = list.sections();
    expect(s.rooms.map((r) => r.id)).toEqual([3, 2, 1]);
    expect(s.direct.map(roomLabel)).toEqual(["Yan"]);
    expect(s.discover.map((r) => r.id)).toEqual([5]);
  });

  it("titles a WhatsApp conversation with its contact's name as staff set it", () => {
    const wa = room(6, { kind: "whatsapp", name: "Dora" });
    const conv = { contact: { wa_id: "4917055502601", name: "Dora Lind" } } as unknown as Conversation;
    expect(roomTitle(wa, conv)).toBe("Dora Lind");
    expect(roomTitle(wa, { contact: { wa_id: "4917055502601", name: "" } } as unknown as Conversation)).toBe("+4917055502601");
    expect(roomTitle(wa, null)).toBe("Dora");
    expect(roomTitle(room(1, { name: "lobby" }), conv)).toBe("lobby");
  });

  it("upsert merges without losing fields, and a reload keeps WhatsApp rooms opened by staff", () => {
    const list = new RoomList();
    list.upsert(room(4, { kind: "direct", peer: { id: 9, name: "Yan" } }));
    list.upsert({ id: 4, last_seq: 5 });
    expect(list.get(4)?.peer?.name).toBe("Yan");
    list.upsert(room(6, { kind: "whatsapp" }));
    list.setAll([room(1)]);
    expect(list.get(6)).toBeDefined();
    expect(list.get(4)).toBeUndefined();
  });

  it("a list asked for before a local change keeps that change: a join, a leave, a message", () => {
    const list = new RoomList();
    list.setAll([room(1, { joined: false }), room(2), room(3, { last_seq: 4 })]);
    const since = list.stamp();
    list.upsert({ id: 1, joined: true }); // joined while the list was on its way
    list.remove(2); // left
    list.onMessage(msg(5, 5, { room_id: 3, author_id: 2 }), 1, false);
    list.setAll([room(1, { joined: false }), room(2), room(3, { last_seq: 4 }), room(7)], since);
    expect(list.get(1)?.joined).toBe(true);
    expect(list.get(2)).toBeUndefined();
    expect([list.get(3)?.last_seq, list.get(3)?.unread]).toEqual([5, 1]);
    expect(list.get(7)).toBeDefined();
  });
});

describe("mention counts", () => {
  it("count live mentions of the user apart from unread, muted rooms too, and reset when read", () => {
    const list = new RoomList();
    list.setAll([room(1, { last_seq: 2, unread: 0, mentions: 1, notify: "none" })]);
    list.onMessage(msg(3, 3, { room_id: 1, author_id: 2, meta: { mentions: [1] } }), 1, false);
    list.onMessage(msg(4, 4, { room_id: 1, author_id: 2, meta: { mentions: [9] } }), 1, false);
    list.onMessage(msg(5, 5, { room_id: 1, author_id: 2, meta: { mentions: [], mention_all: "room" } }), 1, false);
    list.onMessage(msg(6, 6, { room_id: 1, author_id: 1, meta: { mentions: [1] } }), 1, false); // own
    expect([list.get(1)?.mentions, list.get(1)?.unread]).toEqual([3, 3]);
    expect(list.attention()).toBe(0); // muted
    list.upsert({ id: 1, notify: "mentions" });
    expect(list.attention()).toBe(3);
    list.markRead(1, 6);
    expect(list.get(1)?.mentions).toBe(0);
  });
});
