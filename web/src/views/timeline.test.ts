// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { ConversationEvent } from "../types";
import { queueBody } from "./queues";
import { describeEvent, eventItem } from "./timeline";

const base: ConversationEvent = { id: 1, room_id: 9, kind: "opened", actor: null, queue: null, from_queue: null, from_user: null,
  to_user: null, note: "", meta: {}, created_at: "2026-01-01T00:00:00Z" };

describe("the conversation timeline", () => {
  it("says who moved the conversation where, with the transfer's note", () => {
    const transfer = { ...base, kind: "transferred", actor: { id: 2, name: "Sue" }, from_queue: { id: 1, name: "Sales" },
      queue: { id: 3, name: "Support" }, from_user: { id: 4, name: "Al" }, to_user: { id: 5, name: "Bea" }, note: "VIP" };
    expect(describeEvent(transfer)).toBe("Sue transferred it to Support, Bea");
    const item = eventItem(transfer);
    expect(item.dataset.kind).toBe("transferred");
    expect(item.textContent).toContain("Note: VIP");
    expect(describeEvent({ ...base, kind: "assigned", to_user: { id: 5, name: "Bea" }, queue: { id: 3, name: "Support" }, meta: { auto: true } }))
      .toBe("Auto-assignment assigned it to Bea (Support)");
    expect(describeEvent({ ...base, kind: "routed", queue: { id: 3, name: "Support" }, meta: { via: "menu" } })).toBe("Routed to Support by menu");
    expect(describeEvent({ ...base, meta: { by: "contact" } })).toBe("Conversation opened by the contact");
    expect(describeEvent({ ...base, meta: { by: "phone" } })).toBe("Conversation started from the phone");
    expect(describeEvent({ ...base, kind: "first_response", actor: { id: 2, name: "Sue" } })).toBe("Sue answered first");
    expect(describeEvent({ ...base, kind: "first_response", meta: { by: "phone" } })).toBe("First answer, from the phone");
    expect(describeEvent({ ...base, kind: "taken_over", meta: { by: "phone", implicit: true } })).toBe("Taken over from the phone");
  });

  it("builds the queue a form describes", () => {
    expect(queueBody({ name: " Sales ", color: "#aabbcc", greeting: "", away: " busy ", members: [4, 5] }))
      .toEqual({ name: "Sales", color: "#aabbcc", greeting: "", away_message: "busy", members: [{ user_id: 4 }, { user_id: 5 }] });
  });
});
