// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { Inbox } from "../store/inbox";
import { flush, msg } from "../testing";
import type { Conversation, User } from "../types";
import type { App } from "./app";
import { InboxView } from "./inbox";

const ME: User = { id: 1, username: "agent", display_name: "Agent", role: "staff", kind: "human" };
const conv = (room_id: number, extra: Partial<Conversation> = {}): Conversation => ({
  room_id, account_id: 1, contact: { wa_id: "49170", name: "Dora" }, status: "open", ai_enabled: true, assignee: null,
  unread: 0, last_message: null, last_inbound_at: null, window_open: true, updated_at: "2026-11-23T10:00:00Z", ...extra,
});

describe("the inbox", () => {
  it("updates a conversation in place when a message arrives, so a click on it while it changes lands", async () => {
    const inbox = new Inbox();
    const app = {
      me: ME,
      api: { call: async () => ({ conversations: [conv(4)] }) },
      client: { inbox, labels: new Map(), loadLabels: async () => undefined },
    } as unknown as App;
    const view = new InboxView(app);
    document.body.replaceChildren(view.el);
    await flush();
    const item = document.querySelector<HTMLElement>("[data-testid=inbox-item]")!;
    expect(item.dataset.room).toBe("4");
    inbox.upsert(conv(4, { unread: 2, last_message: msg(9, 2, { room_id: 4, author_kind: "contact", body: "are you there?" }),
      updated_at: "2026-11-23T10:05:00Z" }));
    view.update({ kind: "inbox" });
    expect(document.querySelector("[data-testid=inbox-item]")).toBe(item);
    expect(item.querySelector("[data-testid=unread]")?.textContent).toBe("2");
    expect(item.querySelector(".preview")?.textContent).toBe("are you there?");
  });
});
