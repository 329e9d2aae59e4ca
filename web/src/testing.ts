// Builders shared by the unit tests.
import type { Message } from "./types";

export function msg(id: number, seq: number, extra: Partial<Message> = {}): Message {
  return {
    id, room_id: 1, seq, author_id: 1, author_kind: "user", author_name: "Ann", body: `m${seq}`, client_id: null,
    reply_to: null, created_at: "2026-11-23T10:00:00Z", edited_at: null, deleted_at: null, meta: {}, ...extra,
  };
}
