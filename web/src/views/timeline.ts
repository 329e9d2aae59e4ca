// A WhatsApp conversation's timeline (staff): the system events of the desk — opened, routed to
// a queue, assigned, taken over, transferred with a note, closed — shown apart from the
// messages, because they are not messages and the contact never sees them.
import { fill, h } from "../dom";
import type { ConversationEvent } from "../types";
import type { App } from "./app";

/** One line of text for an event: who did what, to whom, in which queue. */
export function describeEvent(e: ConversationEvent): string {
  const who = e.actor ? e.actor.name : e.meta.auto ? "Auto-assignment" : "The desk";
  const queue = e.queue ? ` (${e.queue.name})` : "";
  switch (e.kind) {
    case "opened": return e.meta.by === "phone" ? "Conversation started from the phone" : "Conversation opened by the contact";
    case "reopened": return e.actor ? `${who} reopened it` : "The contact wrote again: reopened";
    case "routed": return e.queue ? `Routed to ${e.queue.name} by ${String(e.meta.via ?? "rule")}` : "Left in no queue";
    case "assigned": return `${who} assigned it to ${e.to_user?.name ?? "nobody"}${queue}`;
    case "taken_over": return e.meta.by === "phone" ? "Taken over from the phone" : `${who} took it over`;
    case "handed_back": return `${who} handed it back to the assistant`;
    case "transferred": {
      const to = [e.queue && e.queue.id !== e.from_queue?.id ? e.queue.name : null, e.to_user?.name].filter(Boolean).join(", ");
      return `${who} transferred it to ${to || "the queue"}`;
    }
    case "first_response": return e.meta.by === "phone" ? "First answer, from the phone" : `${who} answered first`;
    case "closed": return `${who} closed it`;
    default: return e.kind;
  }
}

export function eventItem(e: ConversationEvent): HTMLElement {
  return h("li", { class: "timeline-event", testid: "timeline-event", "data-kind": e.kind },
    h("time", { datetime: e.created_at }, new Date(e.created_at).toLocaleString()), " ",
    describeEvent(e), e.note ? h("p", { class: "note-body" }, `Note: ${e.note}`) : null);
}

export class TimelinePanel {
  private readonly list = h("ol", { class: "timeline", testid: "timeline" });
  readonly el: HTMLElement;

  constructor(private readonly app: App, private readonly roomId: number) {
    this.el = h("section", { class: "timeline-panel", "aria-label": "Conversation timeline (staff only)" },
      h("h3", {}, "Timeline"), this.list);
    void this.reload();
  }

  /** Loads the events again (called when the conversation changed: an event came with it). */
  async reload(): Promise<void> {
    try {
      const r = await this.app.api.call<{ events: ConversationEvent[] }>("GET", `/api/v1/wa/conversations/${this.roomId}/events`);
      fill(this.list, ...(r.events.length ? r.events.map(eventItem) : [h("li", { class: "empty" }, "Nothing yet.")]));
    } catch (err) {
      this.app.notice((err as Error).message);
    }
  }
}
