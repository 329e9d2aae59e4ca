// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { Conversation, Label } from "../types";
import type { App } from "./app";
import { conversationBar, conversationBarSig, labelChoices } from "./conversation";

const VIP: Label = { id: 1, name: "VIP", color: "#d9480f" };
const REFUND: Label = { id: 2, name: "refund", color: "#1f883d" };
const ANGRY: Label = { id: 3, name: "Angry", color: "#cc0000" };

const conv = (labels: Label[] = []): Conversation => ({
  room_id: 9, account_id: 1, contact: { wa_id: "4917055502601", name: "Dora" }, status: "open", ai_enabled: false,
  assignee: null, unread: 0, last_message: null, last_inbound_at: null, window_open: true, updated_at: "2026-12-01T10:00:00Z",
  labels,
} as Conversation);

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function fakeApp(calls: string[], after: Conversation): { app: App; seen: Conversation[] } {
  const seen: Conversation[] = [];
  const app = {
    me: { id: 5, username: "ana", display_name: "Ana", role: "staff", kind: "human" },
    client: { labels: new Map([[1, VIP], [2, REFUND], [3, ANGRY]]), onConversation: (c: Conversation) => seen.push(c) },
    api: { call: async (method: string, path: string) => { calls.push(`${method} ${path}`); return { conversation: after }; } },
    notice: () => undefined,
    staffList: async () => [],
  } as unknown as App;
  return { app, seen };
}

describe("labels on a conversation", () => {
  it("offers the labels not on it yet, by name", () => {
    expect(labelChoices([VIP, REFUND, ANGRY], [{ id: 1 }]).map((l) => l.name)).toEqual(["Angry", "refund"]);
    expect(labelChoices([VIP], undefined).map((l) => l.name)).toEqual(["VIP"]);
  });

  it("puts a label on from the bar and takes one off with its chip's button", async () => {
    const calls: string[] = [];
    const { app, seen } = fakeApp(calls, conv([VIP]));
    const bar = conversationBar(app, conv([REFUND]));
    const select = bar.querySelector<HTMLSelectElement>("[data-testid=conv-label-add]")!;
    expect([...select.options].map((o) => o.textContent)).toEqual(["Label…", "Angry", "VIP"]);
    select.value = "1";
    select.dispatchEvent(new Event("change"));
    await settle();
    bar.querySelector<HTMLButtonElement>("[data-testid=label-remove]")!.click();
    await settle();
    expect(calls).toEqual(["PUT /api/v1/wa/conversations/9/labels/1", "DELETE /api/v1/wa/conversations/9/labels/2"]);
    expect(seen).toHaveLength(2);
  });
});

describe("the bar's signature", () => {
  it("stays when only the conversation's activity moves, and changes with what the bar shows", () => {
    const { app } = fakeApp([], conv());
    const base = conversationBarSig(app, conv([VIP]));
    const busier = { ...conv([VIP]), unread: 3, last_inbound_at: "2026-12-01T10:05:00Z", updated_at: "2026-12-01T10:05:00Z",
      last_message: { id: 7, seq: 7, body: "hello??", author_kind: "contact", created_at: "2026-12-01T10:05:00Z" } };
    expect(conversationBarSig(app, busier)).toBe(base);
    expect(conversationBarSig(app, { ...conv([VIP]), status: "closed" })).not.toBe(base);
    expect(conversationBarSig(app, { ...conv([VIP]), window_open: false })).not.toBe(base);
    expect(conversationBarSig(app, conv([VIP, REFUND]))).not.toBe(base);
    app.client.labels.set(1, { ...VIP, name: "V.I.P." }); // the choices' names
    expect(conversationBarSig(app, conv([VIP]))).not.toBe(base);
  });
});
