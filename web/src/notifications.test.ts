import { describe, expect, it, vi } from "vitest";
import { Notifier, shouldNotify, titleWithCount } from "./notifications";
import type { Room } from "./types";

const room = (extra: Partial<Room> = {}): Room => ({ id: 7, slug: "r", name: "r", kind: "public", topic: "", last_seq: 1, joined: true, ...extra });
const base = { message: { author_id: 2 }, meId: 1, openRoomId: null, hidden: false };

describe("notifications", () => {
  it("follow the room's setting: all, mentions only, or muted", () => {
    expect(shouldNotify({ ...base, room: room(), mention: false })).toBe(true);
    expect(shouldNotify({ ...base, room: room({ notify: "mentions" }), mention: false })).toBe(false);
    expect(shouldNotify({ ...base, room: room({ notify: "mentions" }), mention: true })).toBe(true);
    expect(shouldNotify({ ...base, room: room({ notify: "none" }), mention: true })).toBe(false);
  });

  it("only when the tab is hidden or the room is not open, and never for one's own messages", () => {
    expect(shouldNotify({ ...base, room: room(), mention: true, openRoomId: 7 })).toBe(false);
    expect(shouldNotify({ ...base, room: room(), mention: true, openRoomId: 7, hidden: true })).toBe(true);
    expect(shouldNotify({ ...base, room: room(), mention: true, openRoomId: 8 })).toBe(true);
    expect(shouldNotify({ ...base, room: room(), mention: true, message: { author_id: 1 } })).toBe(false);
  });

  it("put the count in the tab title", () => {
    expect(titleWithCount(0)).toBe("Chat");
    expect(titleWithCount(3)).toBe("(3) Chat");
    expect(titleWithCount(250)).toBe("(99+) Chat");
  });

  it("never ask for permission by themselves, and show once per message when granted", async () => {
    const requestPermission = vi.fn(async () => "granted");
    const shown: string[] = [];
    class FakeNotification {
      static permission = "default";
      static requestPermission = requestPermission;
      onclick = null;
      constructor(title: string) { shown.push(title); }
      close() {}
    }
    const notifier = new Notifier({ Notification: FakeNotification });
    expect(notifier.permission()).toBe("default");
    expect(notifier.show(1, "a", "b", () => undefined)).toBe(false);
    expect(requestPermission).not.toHaveBeenCalled();
    FakeNotification.permission = "granted";
    expect(await notifier.request()).toBe("granted");
    expect(notifier.show(2, "mentioned", "hi", () => undefined)).toBe(true);
    expect(notifier.show(2, "mentioned", "hi", () => undefined)).toBe(false);
    expect(shown).toEqual(["mentioned"]);
    expect(new Notifier({}).permission()).toBe("unsupported");
  });
});
