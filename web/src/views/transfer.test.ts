// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { Conversation, Queue } from "../types";
import { TransferPanel, transferBody, transferTargets } from "./transfer";

const queue = (id: number, name: string): Queue => ({ id, name, color: "#3b82f6", description: "", greeting: "", away_message: "", members: [], updated_at: "2026-12-02T10:00:00.000Z" });
const QUEUES = [queue(1, "Sales"), queue(2, "Support")];

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe("transferring a conversation", () => {
  it("sends the queue and the note, and no empty note", () => {
    expect(transferBody(2, "  VIP, wants a refund ")).toEqual({ queue_id: 2, note: "VIP, wants a refund" });
    expect(transferBody(2, "   ")).toEqual({ queue_id: 2 });
  });

  it("offers every queue but the one the conversation is in", () => {
    expect(transferTargets(QUEUES, 1).map((q) => q.name)).toEqual(["Support"]);
    expect(transferTargets(QUEUES, null).map((q) => q.name)).toEqual(["Sales", "Support"]);
  });

  it("posts the picked queue with the note and clears the form", async () => {
    const sent: Record<string, unknown>[] = [];
    const panel = new TransferPanel({ queues: async () => QUEUES, transfer: async (b) => { sent.push(b); }, onError: () => undefined });
    panel.onConversation({ queue: { id: 1, name: "Sales", color: "#000000" } } as unknown as Conversation);
    await settle();
    const select = panel.el.querySelector<HTMLSelectElement>("[data-testid=transfer-queue]")!;
    expect([...select.options].map((o) => o.textContent)).toEqual(["Transfer to…", "Support"]);
    select.value = "2";
    panel.el.querySelector<HTMLInputElement>("[data-testid=transfer-note]")!.value = "needs a refund";
    panel.el.dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(sent).toEqual([{ queue_id: 2, note: "needs a refund" }]);
    expect(panel.el.querySelector<HTMLInputElement>("[data-testid=transfer-note]")!.value).toBe("");
    expect(panel.el.querySelector("[data-testid=transfer-status]")!.textContent).toBe("Transferred.");
  });

  it("asks for a queue instead of posting nothing", async () => {
    const sent: Record<string, unknown>[] = [];
    const panel = new TransferPanel({ queues: async () => QUEUES, transfer: async (b) => { sent.push(b); }, onError: () => undefined });
    await settle();
    panel.el.dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(sent).toEqual([]);
    expect(panel.el.querySelector("[data-testid=transfer-status]")!.textContent).toBe("Pick a queue.");
  });
});
