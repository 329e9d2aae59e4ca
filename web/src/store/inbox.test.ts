import { describe, expect, it } from "vitest";
import type { Conversation } from "../types";
import { aiAnswering, filterQuery, Inbox, matches, tick } from "./inbox";

const conv = (room_id: number, extra: Partial<Conversation> = {}): Conversation => ({
  room_id, account_id: 1, contact: { wa_id: "49170", name: "Dora" }, status: "open", ai_enabled: true, assignee: null,
  unread: 0, last_message: null, last_inbound_at: null, window_open: true, updated_at: `2026-11-23T10:00:0${room_id}Z`, ...extra,
});

describe("Inbox", () => {
  it("lists the most recently active first and replaces a conversation on update", () => {
    const inbox = new Inbox();
    inbox.setAll([conv(1), conv(2)]);
    expect(inbox.list().map((c) => c.room_id)).toEqual([2, 1]);
    inbox.upsert(conv(1, { updated_at: "2026-11-23T11:00:00Z", status: "closed" }));
    expect(inbox.list().map((c) => c.room_id)).toEqual([1, 2]);
    expect(inbox.get(1)?.status).toBe("closed");
  });

  it("drops a hidden conversation, and the answer to one's own action racing it does not bring it back", () => {
    const inbox = new Inbox();
    inbox.setAll([conv(1), conv(2)]);
    inbox.hide(1);
    expect(inbox.list().map((c) => c.room_id)).toEqual([2]);
    inbox.upsertReply(conv(1, { status: "closed" }));
    expect(inbox.get(1)).toBeUndefined();
    inbox.upsertReply(conv(2, { status: "closed" }));
    expect(inbox.get(2)?.status).toBe("closed");
    // a live event says the viewer sees it again (transferred back): it is listed once more
    inbox.upsert(conv(1));
    expect(inbox.list().map((c) => c.room_id)).toEqual([2, 1]);
    inbox.upsertReply(conv(1, { status: "closed" }));
    expect(inbox.get(1)?.status).toBe("closed");
  });

  it("filters by status, assignee, AI and unread", () => {
    const me = 7;
    const mine = conv(1, { assignee: { id: 7, display_name: "Me" }, ai_enabled: false, unread: 2 });
    const free = conv(2);
    expect(matches(mine, { assignee: "me" }, me)).toBe(true);
    expect(matches(free, { assignee: "me" }, me)).toBe(false);
    expect(matches(free, { assignee: "none" }, me)).toBe(true);
    expect(matches(mine, { ai: false, unread: true }, me)).toBe(true);
    expect(matches(free, { unread: true }, me)).toBe(false);
    expect(matches(free, { status: "closed" }, me)).toBe(false);
    expect(filterQuery({ status: "open", assignee: "me", ai: false, unread: true })).toBe("?status=open&assignee=me&ai=false&unread=true");
    expect(filterQuery({})).toBe("");
  });

  it("the assistant answers only with AI on and nobody assigned", () => {
    expect(aiAnswering(conv(1))).toBe(true);
    expect(aiAnswering(conv(1, { assignee: { id: 1, display_name: "x" } }))).toBe(false);
    expect(aiAnswering(conv(1, { mode: "human" }))).toBe(false);
  });

  it("delivery statuses only move forward, except failures", () => {
    const inbox = new Inbox();
    inbox.setStatus(5, "read");
    inbox.setStatus(5, "delivered");
    expect(inbox.statuses.get(5)).toBe("read");
    inbox.setStatus(6, "sent");
    inbox.setStatus(6, "failed");
    expect(inbox.statuses.get(6)).toBe("failed");
  });

  it("shows one tick for sent, two for delivered and read, ! for failed", () => {
    expect(tick("sent").text).toBe("✓");
    expect(tick("delivered").text).toBe("✓✓");
    expect(tick("read")).toEqual({ text: "✓✓", label: "read" });
    expect(tick("failed").text).toBe("!");
  });
});
