// The staff WhatsApp inbox: conversations from `GET /api/v1/wa/conversations`, kept live by
// `conversation:updated` (the same object), plus delivery ticks from `wa:status`.
import type { Conversation, Label } from "../types";

export interface InboxFilter {
  status?: string; // open | pending | closed
  assignee?: string; // "me" | "none" | a user id
  ai?: boolean;
  unread?: boolean;
  label?: number;
  /** Search: the contact's name, email or number, or words of the messages (decided by the server). */
  q?: string;
  /** With `q`: the rooms the server found; live updates of other rooms stay hidden. */
  found?: ReadonlySet<number>;
}

export class Inbox {
  private readonly byRoom = new Map<number, Conversation>();
  /** Delivery status of outbound WhatsApp messages, by message id. */
  readonly statuses = new Map<number, string>();

  /** Rooms the server said left what the viewer sees (`conversation:hidden`), until an event or
   * a fresh list brings them back: a REST answer that was on its way does not re-add them. */
  private readonly hidden = new Set<number>();

  setAll(list: readonly Conversation[]): void {
    this.byRoom.clear();
    this.hidden.clear();
    for (const c of list) this.byRoom.set(c.room_id, c);
  }

  /** A conversation from a live event (the viewer sees it now). */
  upsert(c: Conversation): void {
    this.hidden.delete(c.room_id);
    this.byRoom.set(c.room_id, c);
  }

  /** A conversation from the answer to the viewer's own action: ignored when it was hidden
   * meanwhile (a transfer's answer and the `conversation:hidden` it caused race each other). */
  upsertReply(c: Conversation): void {
    if (!this.hidden.has(c.room_id)) this.byRoom.set(c.room_id, c);
  }

  /** `conversation:hidden`: the conversation left what the viewer sees. */
  hide(roomId: number): void {
    this.hidden.add(roomId);
    this.byRoom.delete(roomId);
  }

  /** A label changed (`label:updated`): the chips of every conversation show it as it is now. */
  relabel(label: Label): void {
    for (const c of this.byRoom.values()) {
      if (c.labels?.some((l) => l.id === label.id)) c.labels = c.labels.map((l) => (l.id === label.id ? { id: label.id, name: label.name, color: label.color } : l));
    }
  }

  /** A label was deleted (`label:deleted`): it comes off every conversation. */
  dropLabel(id: number): void {
    for (const c of this.byRoom.values()) if (c.labels) c.labels = c.labels.filter((l) => l.id !== id);
  }

  get(roomId: number): Conversation | undefined {
    return this.byRoom.get(roomId);
  }

  /** Statuses only move forward (a late `sent` never hides a `read`); `failed` always shows. */
  setStatus(messageId: number, status: string): void {
    const prev = this.statuses.get(messageId);
    if (prev && status !== "failed" && STATUS_RANK[status] !== undefined && STATUS_RANK[status] < (STATUS_RANK[prev] ?? 0)) return;
    this.statuses.set(messageId, status);
  }

  /** Conversations matching the filter, most recently active first. */
  list(filter: InboxFilter = {}, meId: number | null = null): Conversation[] {
    return [...this.byRoom.values()].filter((c) => matches(c, filter, meId)).sort((a, b) => activity(b).localeCompare(activity(a)));
  }
}

/** Whether the assistant answers this conversation (AI on and nobody assigned). */
export function aiAnswering(c: Conversation): boolean {
  return c.mode ? c.mode === "ai" : c.ai_enabled && c.assignee === null;
}

export function matches(c: Conversation, f: InboxFilter, meId: number | null): boolean {
  if (f.status && c.status !== f.status) return false;
  if (f.ai !== undefined && c.ai_enabled !== f.ai) return false;
  if (f.unread !== undefined && c.unread > 0 !== f.unread) return false;
  if (f.assignee === "none" && c.assignee !== null) return false;
  if (f.assignee === "me" && c.assignee?.id !== meId) return false;
  if (f.assignee && f.assignee !== "me" && f.assignee !== "none" && String(c.assignee?.id) !== f.assignee) return false;
  if (f.label !== undefined && !(c.labels ?? []).some((l) => l.id === f.label)) return false;
  if (f.q && f.found && !f.found.has(c.room_id)) return false;
  return true;
}

/** The query string of `GET /api/v1/wa/conversations` for a filter. */
export function filterQuery(f: InboxFilter): string {
  const p = new URLSearchParams();
  if (f.status) p.set("status", f.status);
  if (f.assignee) p.set("assignee", f.assignee);
  if (f.ai !== undefined) p.set("ai", String(f.ai));
  if (f.unread !== undefined) p.set("unread", String(f.unread));
  if (f.label !== undefined) p.set("label", String(f.label));
  if (f.q?.trim()) p.set("q", f.q.trim());
  const s = p.toString();
  return s ? `?${s}` : "";
}

const STATUS_RANK: Record<string, number> = { queued: 0, sent: 1, delivered: 2, read: 3 };

/** The tick shown beside an outbound WhatsApp message. */
export function tick(status: string): { text: string; label: string } {
  switch (status) {
    case "sent":
      return { text: "✓", label: "sent" };
    case "delivered":
      return { text: "✓✓", label: "delivered" };
    case "read":
      return { text: "✓✓", label: "read" };
    case "failed":
      return { text: "!", label: "not delivered" };
    default:
      return { text: "🕓", label: "sending" };
  }
}

function activity(c: Conversation): string {
  return c.updated_at ?? c.last_message?.created_at ?? c.last_inbound_at ?? "";
}
