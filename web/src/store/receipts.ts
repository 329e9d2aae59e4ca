// Read receipts: the members' read cursors of rooms that have them (DMs and small rooms; the
// server sends none for larger rooms). Filled from `room:join`'s `read_cursors` and kept current
// by `read:updated`; a cursor only moves forward.
import type { ReadCursor, ReadUpdate } from "../types";

export class ReadCursors {
  private readonly rooms = new Map<number, Map<number, number>>();

  /** The cursors `room:join` handed out (absent: the room has no receipts). */
  reset(roomId: number, cursors: readonly ReadCursor[] | undefined): void {
    if (!cursors) {
      this.rooms.delete(roomId);
      return;
    }
    this.rooms.set(roomId, new Map(cursors.map((c) => [c.user_id, c.last_read_seq])));
  }

  /** Applies `read:updated`; false when nothing moved. */
  apply(e: ReadUpdate): boolean {
    let room = this.rooms.get(e.room_id);
    if (!room) this.rooms.set(e.room_id, (room = new Map()));
    if ((room.get(e.user_id) ?? 0) >= e.last_read_seq) return false;
    room.set(e.user_id, e.last_read_seq);
    return true;
  }

  has(roomId: number): boolean {
    return this.rooms.has(roomId);
  }

  /** The members other than `meId` who have read message `seq`, in user id order. */
  seenBy(roomId: number, seq: number, meId: number | null): number[] {
    const room = this.rooms.get(roomId);
    if (!room) return [];
    return [...room.entries()].filter(([id, s]) => id !== meId && s >= seq).map(([id]) => id).sort((a, b) => a - b);
  }
}

/** "Seen" in a DM; "Seen by Ann, Bob +2" in a room (two names, then how many more); "" when nobody. */
export function seenText(names: readonly string[], direct: boolean, shown = 2): string {
  if (!names.length) return "";
  if (direct) return "Seen";
  const more = names.length - shown;
  return `Seen by ${names.slice(0, shown).join(", ")}${more > 0 ? ` +${more}` : ""}`;
}
