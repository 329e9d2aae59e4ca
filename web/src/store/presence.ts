// Who is online. Seeded by `room:join` (members + presence) and kept live by `presence` events;
// a user is online while any of their sockets is connected on any node.
import type { PresenceEvent } from "../types";

export interface PresenceInfo {
  status: "online" | "offline";
  lastSeen: string | null;
}

export class PresenceMap {
  private readonly byUser = new Map<number, PresenceInfo>();

  set(userId: number, status: string, lastSeen: string | null = null): void {
    const prev = this.byUser.get(userId);
    this.byUser.set(userId, {
      status: status === "online" ? "online" : "offline",
      // the server sends last_seen on disconnect; keep the one we had when an event has none
      lastSeen: lastSeen ?? prev?.lastSeen ?? null,
    });
  }

  apply(e: PresenceEvent): void {
    this.set(e.user_id, e.status, e.last_seen);
  }

  get(userId: number): PresenceInfo {
    return this.byUser.get(userId) ?? { status: "offline", lastSeen: null };
  }

  /** Whether anything is known about the user's presence. */
  has(userId: number): boolean {
    return this.byUser.has(userId);
  }

  isOnline(userId: number): boolean {
    return this.get(userId).status === "online";
  }

  /** "online", "last seen 5 min ago", or "offline" when the server never saw them. */
  describe(userId: number, now = Date.now()): string {
    const p = this.get(userId);
    if (p.status === "online") return "online";
    return p.lastSeen ? `last seen ${ago(p.lastSeen, now)}` : "offline";
  }
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", then the date. */
export function ago(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "a while ago";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 7 * 86_400) return `${Math.floor(s / 86_400)} d ago`;
  return `on ${new Date(t).toISOString().slice(0, 10)}`;
}
