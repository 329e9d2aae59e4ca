// The room list: rooms and DMs the user is in, public rooms to join, and unread counts.
//
// `GET /api/v1/rooms` gives `unread` = last_seq - last_read_seq per room. Live messages keep it
// current: a message from someone else in a room that is not on screen counts once (a replay of
// the same seq does not count again); reading a room (`read {room_id, seq}`) moves the cursor.
import type { Conversation, Message, Room } from "../types";

/** Whether `m` mentions the user `meId`: by id in `meta.mentions`, or everyone (`meta.mention_all`). */
export function mentionsUser(m: Message, meId: number | null): boolean {
  if (meId !== null && m.author_id === meId) return false;
  const ids = m.meta?.mentions;
  return Boolean(m.meta?.mention_all) || (meId !== null && Array.isArray(ids) && ids.includes(meId));
}

export interface RoomSections {
  rooms: Room[];
  direct: Room[];
  discover: Room[];
}

export class RoomList {
  private readonly byId = new Map<number, Room>();
  /** A count of local changes, and the count at each room's last change (joined, left, a
   * message, read): a room list fetched before a change must not undo it (see `setAll`). */
  private version = 0;
  private readonly changedAt = new Map<number, number>();

  private touch(id: number): void {
    this.changedAt.set(id, ++this.version);
  }

  /** Where the local changes stand: pass it to `setAll` with the list asked for now. */
  stamp(): number {
    return this.version;
  }

  get(id: number): Room | undefined {
    return this.byId.get(id);
  }

  all(): Room[] {
    return [...this.byId.values()];
  }

  /**
   * Replaces the list (a fresh `GET /rooms`), keeping the rooms not listed there (WhatsApp rooms
   * opened by staff). `since`: the `stamp()` taken when the list was asked for; a room changed
   * here after it (a join acked while the list was on its way) keeps its local record, or stays
   * gone, rather than taking the older one from the list.
   */
  setAll(rooms: readonly Room[], since = Infinity): void {
    const newer = (id: number) => (this.changedAt.get(id) ?? -1) > since;
    const keep = [...this.byId.values()].filter((r) => r.kind === "whatsapp" || newer(r.id));
    this.byId.clear();
    for (const r of keep) this.byId.set(r.id, r);
    for (const r of rooms) if (!newer(r.id)) this.byId.set(r.id, normalise(r));
  }

  /** Adds or merges a room record (create, join, `room:added`); fields not given are kept. */
  upsert(r: Partial<Room> & { id: number }): Room {
    const merged = normalise({ ...(this.byId.get(r.id) ?? ({} as Room)), ...r } as Room);
    this.byId.set(r.id, merged);
    this.touch(r.id);
    return merged;
  }

  remove(id: number): void {
    this.byId.delete(id);
    this.touch(id);
  }

  /**
   * Counts a live message. `visible`: the room is on screen and the page visible (the caller
   * then marks it read). Returns true when the room's state changed.
   */
  onMessage(m: Message, meId: number | null, visible: boolean): boolean {
    const room = this.byId.get(m.room_id);
    if (!room) return false;
    if (m.seq <= room.last_seq) return false; // already counted (ack, sync replay, other tab)
    room.last_seq = m.seq;
    this.touch(room.id);
    // on screen: the caller marks it read (moving the cursor here would skip telling the server);
    // own messages never count as unread, whichever tab sent them
    if (!visible && room.joined && (meId === null || m.author_id !== meId)) {
      room.unread = (room.unread ?? 0) + 1;
      // counted for muted rooms too, like the server does
      if (mentionsUser(m, meId)) room.mentions = (room.mentions ?? 0) + 1;
    }
    return true;
  }

  /** The user has seen the room up to `seq`. */
  markRead(id: number, seq: number): void {
    const room = this.byId.get(id);
    if (!room) return;
    this.touch(id);
    room.last_seq = Math.max(room.last_seq, seq);
    room.last_read_seq = Math.max(room.last_read_seq ?? 0, seq);
    room.unread = Math.max(0, room.last_seq - room.last_read_seq);
    // the cursor passed every mention held; the server's read ack says what is left, if any
    if (room.last_read_seq >= room.last_seq) room.mentions = 0;
  }

  /** What deserves the user's attention, for the tab title: unread messages of rooms set to
   * notify about everything, unread mentions of rooms set to mentions only, nothing of muted rooms. */
  attention(): number {
    let n = 0;
    for (const r of this.byId.values()) {
      if (!r.joined || r.kind === "whatsapp") continue;
      const level = r.notify ?? "all";
      n += level === "all" ? r.unread ?? 0 : level === "mentions" ? r.mentions ?? 0 : 0;
    }
    return n;
  }

  totalUnread(): number {
    let n = 0;
    for (const r of this.byId.values()) if (r.joined) n += r.unread ?? 0;
    return n;
  }

  /** Joined rooms and DMs (unread first, then by name) and public rooms not joined yet. */
  sections(): RoomSections {
    const byUnreadThenName = (a: Room, b: Room) =>
      Number(Boolean(b.unread)) - Number(Boolean(a.unread)) || roomLabel(a).localeCompare(roomLabel(b));
    const rooms: Room[] = [];
    const direct: Room[] = [];
    const discover: Room[] = [];
    for (const r of this.byId.values()) {
      if (r.kind === "whatsapp") continue; // those live in the staff inbox
      if (!r.joined) discover.push(r);
      else if (r.kind === "direct") direct.push(r);
      else rooms.push(r);
    }
    return { rooms: rooms.sort(byUnreadThenName), direct: direct.sort(byUnreadThenName), discover: discover.sort(byUnreadThenName) };
  }
}

/** What to call a room: the other person for a DM, the room's name otherwise. */
export function roomLabel(r: Room): string {
  if (r.kind === "direct") return r.peer?.name ?? r.name;
  return r.name;
}

/** A room's title in its view: a WhatsApp conversation is titled with its contact's name as staff
 * see it (set in the contact panel, else the WhatsApp profile name), not the room's first name. */
export function roomTitle(r: Room, c: Conversation | null): string {
  if (r.kind === "whatsapp" && c) return c.contact.name || `+${c.contact.wa_id}`;
  return roomLabel(r);
}

export function unreadCount(lastSeq: number, lastReadSeq: number): number {
  return Math.max(0, lastSeq - lastReadSeq);
}

function normalise(r: Room): Room {
  const unread = r.unread ?? (r.last_read_seq !== undefined ? unreadCount(r.last_seq, r.last_read_seq) : 0);
  return { ...r, last_seq: r.last_seq ?? 0, unread, mentions: r.mentions ?? 0 };
}
