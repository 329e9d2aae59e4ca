// The WhatsApp controls above a conversation (staff): who answers (assistant or a person), take
// over, hand back, assign, close, reopen, the queue it is in, its labels (put on, taken off),
// whether the 24-hour reply window is open (when it is not, the template picker), and the
// campaign the contact replied to.
import { fill, h } from "../dom";
import { aiAnswering } from "../store/inbox";
import type { Conversation, Label, User } from "../types";
import type { App } from "./app";
import { labelChip } from "./contact";
import { templatePicker } from "./templates";

export function modeText(c: Conversation): string {
  if (aiAnswering(c)) return "AI answering";
  return c.assignee ? `Human: ${c.assignee.display_name}` : "Human (unassigned)";
}

/** The labels that can still be put on a conversation: every label not on it, by name. */
export function labelChoices(all: Iterable<Label>, on: readonly Pick<Label, "id">[] = []): Label[] {
  const have = new Set(on.map((l) => l.id));
  return [...all].filter((l) => !have.has(l.id)).sort((a, b) => a.name.localeCompare(b.name));
}

/** What changes the look of the bar: the conversation but its activity (unread count, last
 * message, times), the viewer and the labels to choose from. A contact's message moves only
 * the activity, so an open select or a template being filled in survives it. */
export function conversationBarSig(app: App, c: Conversation): string {
  const look: Partial<Conversation> = { ...c };
  delete look.unread;
  delete look.last_message;
  delete look.last_inbound_at;
  delete look.updated_at;
  return JSON.stringify([look, app.me.id, [...app.client.labels.values()].map((l) => [l.id, l.name, l.color])]);
}

export function conversationBar(app: App, c: Conversation): HTMLElement {
  const act = (action: string, body?: unknown) => async () => {
    try {
      const r = await app.api.call<{ conversation: Conversation }>("POST", `/api/v1/wa/conversations/${c.room_id}/${action}`, body);
      app.client.onConversation(r.conversation, true);
    } catch (err) {
      app.notice((err as Error).message);
    }
  };
  const assign = h("select", { testid: "assign", "aria-label": "Assign to" }, h("option", { value: "" }, "Assign to…"));
  assign.addEventListener("focus", () => void fillStaff(app, assign, c), { once: true });
  assign.addEventListener("change", () => {
    if (assign.value) void act("assign", { user_id: Number(assign.value) })();
  });
  const label = (labelId: number, on: boolean) => async () => {
    try {
      const r = await app.api.call<{ conversation: Conversation }>(on ? "PUT" : "DELETE", `/api/v1/wa/conversations/${c.room_id}/labels/${labelId}`);
      app.client.onConversation(r.conversation, true);
    } catch (err) {
      app.notice((err as Error).message);
    }
  };
  const addLabel = h("select", { testid: "conv-label-add", "aria-label": "Label the conversation" },
    h("option", { value: "" }, "Label…"), ...labelChoices(app.client.labels.values(), c.labels).map((l) => h("option", { value: l.id }, l.name)));
  addLabel.addEventListener("change", () => {
    if (addLabel.value) void label(Number(addLabel.value), true)();
  });
  const ai = aiAnswering(c);
  return h("div", { class: "wa-bar", role: "group", "aria-label": "WhatsApp conversation" },
    h("span", { class: `mode ${ai ? "ai" : "human"}`, testid: "wa-mode" }, modeText(c)),
    h("span", { class: `status ${c.status}`, testid: "conv-status" }, c.status),
    h("span", { class: "contact" }, /^\d+$/.test(c.contact.wa_id) ? `+${c.contact.wa_id}` : c.contact.wa_id),
    c.queue ? h("span", { class: "queue-badge", testid: "conv-queue", style: `border-color: ${c.queue.color}` }, c.queue.name)
      : c.routing && c.routing !== "routed" ? h("span", { class: "queue-badge", testid: "conv-queue" }, "waiting for the menu answer") : null,
    ...(c.labels ?? []).map((l) => labelChip(l, label(l.id, false))),
    addLabel,
    // a conversation the assistant handed off is human and unassigned: both actions make sense
    c.assignee?.id !== app.me.id ? h("button", { type: "button", testid: "takeover", onclick: act("takeover") }, "Take over") : null,
    ai ? null : h("button", { type: "button", testid: "handback", onclick: act("handback") }, "Hand back to AI"),
    assign,
    c.status === "closed" ? h("button", { type: "button", testid: "reopen", onclick: act("reopen") }, "Reopen")
      : h("button", { type: "button", testid: "close", onclick: act("close") }, "Close"),
    c.campaign ? h("span", { class: "small", testid: "wa-campaign" }, `Replied to campaign: ${c.campaign.name}`) : null,
    c.window_open ? null : h("p", { class: "warn", testid: "wa-window" },
      "The 24-hour window is closed: WhatsApp only delivers template messages until the contact writes again."),
    c.window_open ? null : templatePicker(app, c));
}

async function fillStaff(app: App, select: HTMLSelectElement, c: Conversation): Promise<void> {
  const staff = await app.staffList().catch(() => [] as User[]);
  fill(select, h("option", { value: "" }, "Assign to…"),
    ...staff.map((u) => h("option", { value: u.id, selected: c.assignee?.id === u.id }, u.id === app.me.id ? `${u.display_name} (me)` : u.display_name)));
}
