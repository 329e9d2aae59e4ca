// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { Conversation } from "../types";
import { AI_LABEL, AssistPanel, type AssistDraft } from "./assist";

const ME = 7;
const draft = (text: string): AssistDraft => ({ text, ai_written: true, upto_seq: 3, provider: "offline", model: "faq", offline: true });
const conv = (assignee: number | null, ai: boolean): Conversation => ({
  room_id: 1, account_id: 1, contact: { wa_id: "49170", name: "Ann" }, status: "open", ai_enabled: ai,
  assignee: assignee === null ? null : { id: assignee, display_name: "X" }, unread: 0, last_message: null,
  last_inbound_at: null, window_open: true,
});
const settle = () => new Promise((r) => setTimeout(r, 0));

function setup(fail = false) {
  const asked: string[] = [];
  const composed: string[] = [];
  const errors: string[] = [];
  const panel = new AssistPanel({
    ask: async (kind) => {
      asked.push(kind);
      if (fail) throw new Error("the assistant could not answer (timeout)");
      return draft(kind === "summary" ? "Ann asks about order 77." : "It ships Monday.");
    },
    useSuggestion: (text) => composed.push(text),
    onError: (m) => errors.push(m),
  }, ME);
  document.body.append(panel.el);
  return { panel, asked, composed, errors };
}

describe("the agent-assist panel", () => {
  it("fetches the summary once when the viewer takes the conversation over, labelled as AI-written", async () => {
    const { panel, asked } = setup();
    panel.onConversation(conv(null, true));
    expect(asked).toEqual([]);
    panel.onConversation(conv(ME, false));
    await settle();
    panel.onConversation(conv(ME, false)); // a later update of the same takeover asks nothing more
    await settle();
    expect(asked).toEqual(["summary"]);
    expect(panel.el.querySelector("[data-testid=ai-tag]")?.textContent).toBe(AI_LABEL);
    expect(panel.el.querySelector("[data-testid=assist-summary-text]")?.textContent).toBe("Ann asks about order 77.");
  });

  it("does not fetch for someone else's takeover, nor on opening a conversation already the viewer's", async () => {
    const { panel, asked } = setup();
    panel.onConversation(conv(null, true));
    panel.onConversation(conv(ME + 1, false));
    const other = setup();
    other.panel.onConversation(conv(ME, false));
    await settle();
    expect(other.asked).toEqual([]);
    await settle();
    expect(asked).toEqual([]);
  });

  it("puts a suggested reply into the composer, labelled, and sends nothing", async () => {
    const { panel, asked, composed } = setup();
    (panel.el.querySelector("[data-testid=assist-suggest]") as HTMLButtonElement).click();
    await settle();
    expect(asked).toEqual(["suggestion"]);
    expect(composed).toEqual(["It ships Monday."]);
    expect(panel.el.textContent).toContain(AI_LABEL);
  });

  it("reports a failure and re-enables its buttons", async () => {
    const { panel, errors } = setup(true);
    await panel.suggest();
    expect(errors).toEqual(["the assistant could not answer (timeout)"]);
    expect((panel.el.querySelector("[data-testid=assist-suggest]") as HTMLButtonElement).disabled).toBe(false);
  });
});
