export interface User { id: number; username: string; display_name: string; role: string; kind: string }
export interface Message {
  id: number; room_id: number; seq: number; author_id: number | null; author_kind: string;
  author_name: string | null; body: string; client_id: string | null; reply_to: number | null;
  created_at: string; edited_at: string | null; deleted_at: string | null; meta: Record<string, unknown>;
}
export interface Room {
  id: number; slug: string; name: string; kind: string; topic: string; last_seq: number;
  joined?: boolean; unread?: number; members_count?: number; peer?: { id: number; name: string };
}
export interface Pending { client_id: string; room_id: number; body: string; created_at: string; failed?: string }
export interface Conversation {
  room_id: number; contact: { wa_id: string; name: string }; status: string; ai_enabled: boolean; mode: string;
  assignee: { id: number; display_name: string } | null; unread: number; window_open: boolean;
  last_message: { body: string; seq: number } | null;
}
export type Ack<T> = ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };
