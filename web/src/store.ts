// Client-side message state: dedupe by id, order by seq, pending sends until acked, gap detection.
import type { Message, Pending } from "./types";

export class RoomMessages {
  readonly byId = new Map<number, Message>();
  readonly pending = new Map<string, Pending>();
  hasMore = true;

  /** Adds or replaces messages; returns true when a gap before the newest one is detected. */
  add(messages: Message[]): boolean {
    const before = this.lastSeq();
    for (const m of messages) {
      this.byId.set(m.id, m);
      if (m.client_id) this.pending.delete(m.client_id);
    }
    const newest = messages.reduce((a, m) => Math.max(a, m.seq), 0);
    return before > 0 && newest > before + 1 && !this.hasSeqs(before + 1, newest - 1);
  }

  update(m: Message): void {
    if (this.byId.has(m.id)) this.byId.set(m.id, m);
  }

  queue(p: Pending): void {
    this.pending.set(p.client_id, p);
  }

  fail(clientId: string, reason: string): void {
    const p = this.pending.get(clientId);
    if (p) p.failed = reason;
  }

  sorted(): Message[] {
    return [...this.byId.values()].sort((a, b) => a.seq - b.seq);
  }

  lastSeq(): number {
    let max = 0;
    for (const m of this.byId.values()) max = Math.max(max, m.seq);
    return max;
  }

  firstSeq(): number | null {
    let min: number | null = null;
    for (const m of this.byId.values()) min = min === null ? m.seq : Math.min(min, m.seq);
    return min;
  }

  private hasSeqs(from: number, to: number): boolean {
    const seqs = new Set([...this.byId.values()].map((m) => m.seq));
    for (let s = from; s <= to; s++) if (!seqs.has(s)) return false;
    return true;
  }
}

/** Who is typing in a room; entries expire by themselves. */
export class TypingState {
  private until = new Map<number, { name: string; until: number }>();

  set(userId: number, name: string, typing: boolean, ttlMs: number, now = Date.now()): void {
    if (typing) this.until.set(userId, { name, until: now + ttlMs });
    else this.until.delete(userId);
  }

  names(now = Date.now()): string[] {
    for (const [id, t] of this.until) if (t.until <= now) this.until.delete(id);
    return [...this.until.values()].map((t) => t.name);
  }
}

export function unreadCount(lastSeq: number, lastReadSeq: number): number {
  return Math.max(0, lastSeq - lastReadSeq);
}

export function newClientId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
