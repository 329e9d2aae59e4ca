// Transfer a WhatsApp conversation (staff) to another queue, with a note for the colleagues who
// get it: a queue picked from every queue of the desk (`GET /api/v1/queues?scope=all`: staff may
// hand a conversation to a department they are not in), the note, and the button. Without an
// agent named, the queue's auto-assignment picks one. The panel lives as long as the conversation
// view, so a live update of the conversation does not wipe a note being typed.
import { fill, h } from "../dom";
import type { Conversation, Queue } from "../types";

export interface TransferSource {
  queues(): Promise<Queue[]>;
  transfer(body: Record<string, unknown>): Promise<void>;
  onError(message: string): void;
}

/** The body of POST …/transfer from the form's values: the queue, and the note when one is written. */
export function transferBody(queueId: number, note: string): Record<string, unknown> {
  const text = note.trim();
  return text ? { queue_id: queueId, note: text } : { queue_id: queueId };
}

/** The queues a conversation can go to: every queue but the one it is in. */
export function transferTargets(queues: Queue[], current: number | null): Queue[] {
  return queues.filter((q) => q.id !== current);
}

export class TransferPanel {
  private readonly queue = h("select", { testid: "transfer-queue", "aria-label": "Transfer to queue" });
  private readonly note = h("input", { testid: "transfer-note", "aria-label": "Note for the colleagues (staff only)",
    placeholder: "Note for the colleagues (staff only)", maxlength: 1000 });
  private readonly button = h("button", { type: "submit", testid: "transfer-submit" }, "Transfer");
  private readonly status = h("span", { class: "muted small", role: "status", testid: "transfer-status" });
  private all: Queue[] = [];
  private current: number | null = null;
  readonly el: HTMLElement;

  constructor(private readonly source: TransferSource) {
    this.el = h("form", { class: "transfer row", testid: "transfer", "aria-label": "Transfer the conversation",
      onsubmit: (e) => { e.preventDefault(); void this.submit(); } }, this.queue, this.note, this.button, this.status);
    this.render();
    void source.queues().then((qs) => { this.all = qs; this.render(); }, (err: Error) => source.onError(err.message));
  }

  /** Called with every version of the conversation: the queue it is in is not offered. */
  onConversation(c: Conversation): void {
    const id = c.queue?.id ?? null;
    if (id === this.current) return;
    this.current = id;
    this.render();
  }

  private render(): void {
    const picked = this.queue.value;
    const targets = transferTargets(this.all, this.current);
    fill(this.queue, h("option", { value: "" }, "Transfer to…"),
      ...targets.map((q) => h("option", { value: q.id, selected: String(q.id) === picked }, q.name)));
    this.button.disabled = targets.length === 0;
  }

  private async submit(): Promise<void> {
    const id = Number(this.queue.value);
    if (!id) {
      this.status.textContent = "Pick a queue.";
      return;
    }
    this.button.disabled = true;
    try {
      await this.source.transfer(transferBody(id, this.note.value));
      this.note.value = "";
      this.queue.value = "";
      this.status.textContent = "Transferred.";
    } catch (err) {
      this.source.onError((err as Error).message);
    } finally {
      this.button.disabled = false;
    }
  }
}
