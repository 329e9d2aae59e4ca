// Private notes of WhatsApp conversations (staff only): loaded from
// `GET /api/v1/wa/conversations/{id}/notes`, kept live by `note:added`. Notes are not messages:
// they never enter the message store, so nothing that sends or shows messages can take one.
import type { Note } from "../types";

export class Notes {
  private readonly byRoom = new Map<number, Note[]>();

  /** The room's notes, oldest first; undefined until loaded. */
  get(roomId: number): readonly Note[] | undefined {
    return this.byRoom.get(roomId);
  }

  setAll(roomId: number, list: readonly Note[]): void {
    const live = this.byRoom.get(roomId) ?? [];
    this.byRoom.set(roomId, []);
    for (const n of [...list, ...live]) this.add(n); // a note that arrived live during the load stays
  }

  /** Adds a note once (the live event and the POST answer carry the same one), in id order. */
  add(n: Note): void {
    const list = this.byRoom.get(n.room_id);
    if (!list) {
      this.byRoom.set(n.room_id, [n]);
      return;
    }
    if (list.some((x) => x.id === n.id)) return;
    list.push(n);
    list.sort((a, b) => a.id - b.id);
  }
}
