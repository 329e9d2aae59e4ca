// Wire shapes shared with chat-server (docs/PROTOCOL.md) and chat-archive.

export type Role = "user" | "staff" | "supervisor" | "admin";

export interface User {
  id: number;
  username: string;
  display_name: string;
  role: Role;
  kind: "human" | "assistant" | "contact" | string;
  /** Signed, short-lived URL of the user's picture (a thumbnail); null: none, show initials. */
  avatar_url?: string | null;
}

/** A room member as listed by `room:join`. */
export interface Member extends User {
  member_role?: string;
  last_seen: string | null;
}

export interface Message {
  id: number;
  room_id: number;
  seq: number;
  author_id: number | null;
  author_kind: "user" | "assistant" | "contact" | "system" | string;
  author_name: string | null;
  body: string;
  client_id: string | null;
  reply_to: number | null;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
  meta: Record<string, unknown>;
  /** Files sent with the message ([] when none; servers before uploads omit it). */
  attachments?: Attachment[];
  /** Emoji reactions, per emoji in the order first used ([] when none; older servers omit it). */
  reactions?: Reaction[];
}

/** One emoji's reactions: `count` users, the first 10 of them in `user_ids`. */
export interface Reaction {
  emoji: string;
  count: number;
  user_ids: number[];
}

/** `read:updated`: a member's read cursor moved (rooms with read receipts only). */
export interface ReadCursor {
  user_id: number;
  last_read_seq: number;
}

export interface ReadUpdate extends ReadCursor {
  room_id: number;
}

/** What `POST /api/v1/uploads` answers: a stored file, not yet part of a message. */
export interface Upload {
  id: string;
  name: string;
  mime: string;
  size: number;
  /** Short-lived signed URLs (about an hour): usable in `src`/`href` without a token. */
  url: string;
  thumb_url: string | null;
  width: number | null;
  height: number | null;
}

/** A file of a message. `status: "unavailable"`: WhatsApp media the server could not fetch. */
export interface Attachment extends Upload {
  status?: "pending" | "unavailable";
}

export interface Room {
  id: number;
  slug: string;
  name: string;
  kind: "public" | "private" | "direct" | "whatsapp" | string;
  topic: string;
  last_seq: number;
  joined?: boolean;
  unread?: number;
  last_read_seq?: number;
  members_count?: number;
  /** Direct rooms in the room list: the other person, with their presence at that moment. */
  peer?: Peer;
  /** Set: archived by its owners, read-only (sends answer `archived`). */
  archived_at?: string | null;
  created_by?: number | null;
  /** Unread mentions of the user (room lists, `room:join`); separate from `unread`. */
  mentions?: number;
  /** The user's notification setting for the room (rooms they belong to). */
  notify?: NotifyLevel;
}

export interface Peer {
  id: number;
  name: string;
  kind?: string | null;
  /** null: the server could not say (Redis away) */
  status?: "online" | "offline" | null;
  last_seen?: string | null;
  avatar_url?: string | null;
}

/** `member:removed` (to the removed user only) and `room:deleted`. */
export interface RoomGoneEvent {
  room_id: number;
  user_id?: number;
}

export type NotifyLevel = "all" | "mentions" | "none";

/** `mention`: the user was mentioned in a room they have not muted. */
export interface MentionEvent {
  room_id: number;
  message_id: number;
  seq: number;
}

/** A saved reply (`/shortcut`); shared by the desk or the user's own. */
export interface CannedReply {
  id: number;
  scope: "shared" | "personal";
  shortcut: string;
  body: string;
  created_at: string;
  updated_at: string;
}

/** A private note in a WhatsApp conversation (staff only; never sent to the contact). */
export interface Note {
  id: number;
  room_id: number;
  author: { id: number; username: string; display_name: string };
  body: string;
  created_at: string;
}

/** A coloured label (docs/DESK.md, Labels); `color` is #rrggbb. */
export interface Label {
  id: number;
  name: string;
  color: string;
  created_at?: string;
  updated_at?: string;
}

/** The person behind WhatsApp conversations (staff only). */
export interface Contact {
  id: number;
  name: string;
  name_edited: boolean;
  phone: string | null;
  email: string | null;
  notes: string;
  attributes: Record<string, string | number | boolean | null>;
  identities: { kind: "wa_id" | "bsuid" | "phone"; value: string }[];
  labels: Label[];
  created_at: string;
  updated_at: string;
}

export interface Conversation {
  room_id: number;
  account_id: number | null;
  /** The WhatsApp Web (linked-device) session; null on the Cloud API. */
  session_id?: number | null;
  channel?: "cloud_api" | "linked_device";
  /** The campaign the contact replied to. */
  campaign?: { id: number; name: string } | null;
  business_phone?: string;
  /** `id`: the contact (person); `wa_id`: the address replies go to; `bsuid`: WhatsApp's business-scoped user id. */
  contact: { id?: number | null; wa_id: string; name: string; bsuid?: string | null };
  labels?: Label[];
  status: "open" | "pending" | "closed" | string;
  ai_enabled: boolean;
  /** "ai" while the assistant answers (AI on, nobody assigned), "human" otherwise. */
  mode?: "ai" | "human";
  assignee: { id: number; username?: string; display_name: string } | null;
  unread: number;
  last_message: { id: number; seq: number; body: string; author_kind: string; created_at: string } | null;
  last_inbound_at: string | null;
  window_open: boolean;
  updated_at?: string;
  /** The queue (department) it is in; null: in none. */
  queue?: { id: number; name: string; color: string } | null;
  /** "menu" while the greeting menu waits for the contact's answer. */
  routing?: "routed" | "menu" | "menu_again";
}

/** A queue (department) of the support desk. */
export interface Queue {
  id: number;
  name: string;
  color: string;
  description: string;
  greeting: string;
  away_message: string;
  members: { user_id: number; username: string; display_name: string; capacity: number | null }[];
  /** Moves forward with every change (fixed-width ISO text, so later compares greater): of two
   * states of a queue heard out of order, the one with the greater value is the newer. */
  updated_at: string;
}

/** A system event in a conversation's timeline: staff only, never sent to the contact. */
export interface ConversationEvent {
  id: number;
  room_id: number;
  kind: string;
  actor: { id: number; name: string } | null;
  queue: { id: number; name: string } | null;
  from_queue: { id: number; name: string } | null;
  from_user: { id: number; name: string } | null;
  to_user: { id: number; name: string } | null;
  note: string;
  meta: Record<string, unknown>;
  created_at: string;
}

/** `wa:session`: a linked-device session's QR code, pairing code or link state (admins only). */
export interface WaSessionEvent {
  session_id: number;
  kind: "qr" | "pairing_code" | "connected" | "disconnected" | "logged_out" | "qr_expired";
  status: string;
  reason: string | null;
  qr?: string;
  qr_svg?: string;
  pairing_code?: string;
  jid?: string;
}

export interface AckError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export type Ack<T = object> = ({ ok: true } & T) | { ok: false; error: AckError };

export interface TypingEvent {
  room_id: number;
  user: { id: number; display_name: string };
  typing: boolean;
  ttl_ms?: number;
}

export interface PresenceEvent {
  user_id: number;
  status: "online" | "offline" | string;
  last_seen: string | null;
}

export interface DeltaEvent {
  room_id: number;
  reply_id: string;
  text: string;
}

export interface WaStatusEvent {
  room_id: number;
  message_id: number;
  status: "queued" | "sent" | "delivered" | "read" | "failed" | string;
  error?: { code?: number | string; title?: string } | null;
}

export interface MemberEvent {
  room_id: number;
  user: User;
  /** member:joined only: the member's presence when they joined */
  presence?: "online" | "offline";
}

export interface JoinResult {
  room: Room;
  members: Member[];
  presence: Record<string, string>;
  messages: Message[];
  has_more: boolean;
  /** Every member's read cursor, in rooms with read receipts (DMs, small rooms). */
  read_cursors?: ReadCursor[];
  /** Unread mentions of the user in the room, and their notification setting. */
  mentions?: number;
  notify?: NotifyLevel;
}

export interface HistoryResult {
  messages: Message[];
  has_more: boolean;
  /** chat-archive did not answer: only the hot part came; ask again later */
  archive_unavailable?: boolean;
  /** the next older messages are on their way to the archive: only the hot part came; ask again */
  archive_pending?: boolean;
}

export interface SyncResult {
  /** each room: what came after the cursor and, given `changed_since`, what was edited or deleted */
  rooms: Record<string, { messages: Message[]; resync: boolean; last_seq?: number; changed?: Message[] }>;
  /** the server's time of the answer: the next `changed_since` */
  as_of?: string;
}

/** `campaign:progress` (supervisors and admins): counts only grow, except queued and sending. */
export interface CampaignProgress {
  campaign_id: number;
  seq: number;
  status: "draft" | "running" | "paused" | "completed" | "cancelled";
  pause_reason: string | null;
  total: number;
  queued: number;
  sending: number;
  sent: number;
  delivered: number;
  read: number;
  failed: number;
  replied: number;
  skipped: number;
  unknown: number;
}
