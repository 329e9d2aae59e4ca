// Agent assist beside a WhatsApp conversation (staff): a short AI summary of the conversation
// (asked for at once when the viewer takes the conversation over) and an AI-suggested reply that
// goes into the composer for the agent to edit and send as their own message. Both are labelled
// as written by the AI; neither is sent or stored by asking for it.
import { fill, h } from "../dom";
import type { Conversation } from "../types";

export interface AssistDraft {
  text: string;
  ai_written: true;
  upto_seq: number;
  provider: string;
  model: string;
  offline: boolean;
}

export interface AssistSource {
  ask(kind: "summary" | "suggestion"): Promise<AssistDraft>;
  /** Puts the suggested text into the composer (replacing what is there). */
  useSuggestion(text: string): void;
  onError(message: string): void;
}

export const AI_LABEL = "AI-written · check before using";

export class AssistPanel {
  private readonly output = h("div", { class: "assist-output", testid: "assist-output", "aria-live": "polite" });
  private readonly summaryBtn = h("button", { type: "button", testid: "assist-summary" }, "Summarise");
  private readonly suggestBtn = h("button", { type: "button", testid: "assist-suggest" }, "Suggest reply");
  readonly el: HTMLElement;
  /** Whether the conversation is the viewer's (AI off); null until the first version is seen. */
  private mine: boolean | null = null;
  private busy = false;

  constructor(private readonly source: AssistSource, private readonly meId: number) {
    this.summaryBtn.addEventListener("click", () => void this.summary());
    this.suggestBtn.addEventListener("click", () => void this.suggest());
    this.el = h("section", { class: "assist", testid: "assist", "aria-label": "AI assist (staff only)" },
      h("div", { class: "assist-actions" }, this.summaryBtn, this.suggestBtn), this.output);
  }

  /** Called with every version of the conversation: the moment it becomes the viewer's (a
   * takeover or an assignment to them, AI off), the summary is fetched without a click; opening
   * a conversation that already was theirs asks nothing (each ask counts against their quota). */
  onConversation(c: Conversation): void {
    const mine = c.assignee?.id === this.meId && !c.ai_enabled;
    if (mine && this.mine === false) void this.summary();
    this.mine = mine;
  }

  async summary(): Promise<void> {
    const draft = await this.ask("summary");
    if (draft === null) return;
    fill(this.output,
      h("span", { class: "ai-tag", testid: "ai-tag" }, AI_LABEL),
      h("p", { class: "assist-summary", testid: "assist-summary-text" }, draft.text || "Nothing to summarise yet."));
  }

  async suggest(): Promise<void> {
    const draft = await this.ask("suggestion");
    if (draft === null) return;
    if (!draft.text) {
      fill(this.output, h("p", {}, "No suggestion: the conversation has no messages yet."));
      return;
    }
    this.source.useSuggestion(draft.text);
    fill(this.output,
      h("span", { class: "ai-tag", testid: "ai-tag" }, AI_LABEL),
      h("p", { class: "assist-note" }, "An AI-written reply is in the composer: edit it, then send."));
  }

  private async ask(kind: "summary" | "suggestion"): Promise<AssistDraft | null> {
    if (this.busy) return null;
    this.busy = true;
    this.summaryBtn.disabled = this.suggestBtn.disabled = true;
    try {
      return await this.source.ask(kind);
    } catch (err) {
      this.source.onError((err as Error).message);
      return null;
    } finally {
      this.busy = false;
      this.summaryBtn.disabled = this.suggestBtn.disabled = false;
    }
  }
}
