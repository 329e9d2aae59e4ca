// The chat state machine, without DOM and without a socket: it takes server events in, turns
// user actions into acked emits, and tells the views what changed.
//
//   Connection (socket.io) --events--> ChatClient --Change--> views (render functions)
//   views --actions--> ChatClient --emit(event, data) -> Ack--> Connection
//
// Guarantees it keeps: each message shown once (by id) in seq order; own sends pending until
// acked and re-sent with the same client_id after a reconnect; a seq jump or a reconnect is
// filled with `sync` (or a fresh page when the server says `resync`); unread counts follow
// what is on screen.
import type { PendingSend } from "./store/messages";
import { RoomMessages } from "./store/messages";
import { Inbox } from "./store/inbox";
import { Notes } from "./store/notes";
import { PresenceMap } from "./store/presence";
import { RoomList } from "./store/rooms";
import { TypingState } from "./store/typing";
import { MyReactions, reactionsOf } from "./store/reactions";
import { ReadCursors } from "./store/receipts";
import type {
  Ack, AckError, Attachment, Contact, Conversation, DeltaEvent, HistoryResult, JoinResult, Member, MemberEvent, MentionEvent, Message,
  Label, Note, NotifyLevel, PresenceEvent, ReadUpdate, Room, SyncResult, TypingEvent, User, WaStatusEvent,
} from "./types";

export type Emit = <T>(event: string, data: unknown, timeoutMs?: number) => Promise<Ack<T>>;

export type Change =
  | { kind: "rooms" }
  | { kind: "messages"; roomId: number; stick?: boolean }
  | { kind: "typing"; roomId: number }
  | { kind: "presence"; userId: number }
  | { kind: "gone"; roomId: number }
  | { kind: "members"; roomId: number }
  | { kind: "inbox" }
  /** A WhatsApp conversation's private notes changed. */
  | { kind: "notes"; roomId: number }
  /** A contact changed (staff edit, labels). */
  | { kind: "contact"; contactId: number }
  /** The set of labels changed (created, renamed, recoloured, deleted). */
  | { kind: "labels" }
  /** The socket is (re)connected: panes waiting for it can load now. */
  | { kind: "connected" }
  /** A live message of someone else arrived (not a replay): notifications decide on it. */
  | { kind: "incoming"; message: Message }
  /** The server says the user was mentioned (`mention`; never for muted rooms). */
  | { kind: "mention"; roomId: number; messageId: number };

export interface ClientDeps {
  me: () => User | null;
  emit: Emit;
  connected: () => boolean;
  /** The room is on screen and the page is visible: what arrives there is read. */
  isVisible: (roomId: number) => boolean;
  /** A REST call (room list reload, staff read cursor). */
  call: <T>(method: string, path: string, body?: unknown) => Promise<T>;
  /** Timers, replaceable in tests. */
  setTimeout?: (fn: () => void, ms: number) => unknown;
  now?: () => number;
}

export interface Stream {
  room_id: number;
  text: string;
  updated: number;
}

export const HISTORY_PAGE = 50;
export const STREAM_STALE_MS = 60_000; // a reply with no delta for a minute has failed server-side
const RETRY_DELAY_MS = 3_000;
/** Signed media URLs live about an hour. A message whose media fails to load is fetched again
 * once; failing again within this time, the URL is not merely stale: no loop of re-fetches. */
export const MEDIA_REFRESH_MS = 60_000;
/** A record's media URLs older than this may have expired (the server signs them for 1 h by
 * default): a download link that old is renewed before it is followed. */
export const MEDIA_URL_FRESH_MS = 45 * 60_000;
/** Live messages remembered for notifications in rooms whose messages are not kept. */
const RECENT_MAX = 50;
const ROOM_PAGES_MAX = 50; // of up to 100 rooms each: a bound, should a server keep answering has_more

interface RoomPage {
  rooms: Room[];
  has_more?: boolean;
  next_cursor?: number | null;
}
/** Errors after which the same send may succeed later; anything else needs the user. */
const RETRYABLE = new Set(["offline", "timeout", "unavailable", "rate_limited", "internal"]);

export function newClientId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

export class ChatClient {
  readonly rooms = new RoomList();
  readonly presence = new PresenceMap();
  readonly inbox = new Inbox();
  readonly notes = new Notes();
  /** Contacts loaded by the contact panel, kept live by `contact:updated`. */
  readonly contacts = new Map<number, Contact>();
  /** Every label, by id, once loaded (`GET /api/v1/labels`), kept live by `label:updated`/`label:deleted`. */
  readonly labels = new Map<number, Label>();
  private labelsLoaded = false;
  readonly members = new Map<number, Member[]>();
  readonly streams = new Map<string, Stream>();
  /** Read receipts of the rooms that have them. */
  readonly receipts = new ReadCursors();
  /** This user's own reactions as its `message:react` acks said. */
  readonly myReactions = new MyReactions();
  private readonly msgs = new Map<number, RoomMessages>();
  private readonly typing = new Map<number, TypingState>();
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly filling = new Set<number>();
  /** Rooms being opened (`room:join` in flight) and the live messages heard meanwhile: the
   * server subscribes the socket before it reads the page it answers with, so a message stored
   * after that read arrives live before the answer, and is kept for it rather than dropped. */
  private readonly joining = new Map<number, Message[]>();
  private readonly olderLoading = new Set<number>();
  /** Rooms with a `read` in flight; true when another one is due after it. */
  private readonly reading = new Map<number, boolean>();
  private readonly later: (fn: () => void, ms: number) => unknown;
  /** The server time of the last `sync` answer. */
  private asOf: string | null = null;
  /** When the media URLs of a message were last fetched again, by message id. */
  private readonly mediaRefreshed = new Map<number, number>();
  /** A history page in flight for fresh media URLs, per room: the seqs it covers. */
  private readonly mediaLoads = new Map<number, { from: number; to: number; done: Promise<void> }>();
  private readonly now: () => number;
  /** The latest live messages of others, by id, whatever the room: a `mention` (which carries only
   * ids) of a room not open, whose messages are not kept, still names its author and text. */
  private readonly recent = new Map<number, Message>();

  constructor(private readonly deps: ClientDeps) {
    this.later = deps.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.now = deps.now ?? Date.now;
  }

  subscribe(fn: (c: Change) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  messages(roomId: number): RoomMessages {
    let rm = this.msgs.get(roomId);
    if (!rm) {
      rm = new RoomMessages();
      rm.clock = this.now;
      this.msgs.set(roomId, rm);
    }
    return rm;
  }

  typingIn(roomId: number): TypingState {
    let t = this.typing.get(roomId);
    if (!t) this.typing.set(roomId, (t = new TypingState()));
    return t;
  }

  /** Streaming assistant replies in a room that are still alive. */
  liveStreams(roomId: number, now = Date.now()): [string, Stream][] {
    const out: [string, Stream][] = [];
    for (const [id, s] of this.streams) {
      if (now - s.updated > STREAM_STALE_MS) this.streams.delete(id);
      else if (s.room_id === roomId) out.push([id, s]);
    }
    return out;
  }

  // --- server events ----------------------------------------------------------------------------

  onMessage(m: Message): void {
    const fresh = !this.messages(m.room_id).get(m.id) && m.seq > (this.rooms.get(m.room_id)?.last_seq ?? 0);
    this.accept(m.room_id, [m]);
    if (fresh && m.author_id !== (this.deps.me()?.id ?? null)) {
      this.recent.set(m.id, m);
      if (this.recent.size > RECENT_MAX) this.recent.delete(this.recent.keys().next().value as number);
      this.notify({ kind: "incoming", message: m });
    }
  }

  /** A message of `roomId` held on screen or just received live (for notifications). */
  findMessage(roomId: number, messageId: number): Message | undefined {
    const held = this.messages(roomId).get(messageId);
    if (held) return held;
    const m = this.recent.get(messageId);
    return m?.room_id === roomId ? m : undefined;
  }

  onMention(e: MentionEvent): void {
    this.notify({ kind: "mention", roomId: e.room_id, messageId: e.message_id });
  }

  /** Stores the room's notification setting on the server (`PUT /rooms/{id}/settings`). */
  async setNotify(roomId: number, notify: NotifyLevel): Promise<void> {
    const r = await this.deps.call<{ notify: NotifyLevel; mentions: number }>("PUT", `/api/v1/rooms/${roomId}/settings`, { notify });
    this.rooms.upsert({ id: roomId, notify: r.notify, mentions: r.mentions });
    this.notify({ kind: "rooms" });
  }

  onMessageUpdated(m: Message): void {
    if (this.messages(m.room_id).update(m)) this.notify({ kind: "messages", roomId: m.room_id });
  }

  onReadUpdated(e: ReadUpdate): void {
    if (this.receipts.apply(e)) this.notify({ kind: "messages", roomId: e.room_id });
  }

  onTyping(e: TypingEvent): void {
    if (e.user.id === this.deps.me()?.id) return;
    this.typingIn(e.room_id).set(e.user.id, e.user.display_name, e.typing, e.ttl_ms);
    this.notify({ kind: "typing", roomId: e.room_id });
  }

  onPresence(e: PresenceEvent): void {
    this.presence.apply(e);
    this.notify({ kind: "presence", userId: e.user_id });
  }

  onDelta(d: DeltaEvent): void {
    const s = this.streams.get(d.reply_id) ?? { room_id: d.room_id, text: "", updated: 0 };
    s.text += d.text;
    s.updated = Date.now();
    this.streams.set(d.reply_id, s);
    this.notify({ kind: "messages", roomId: d.room_id, stick: true });
  }

  onRoomAdded(r: Room): void {
    this.rooms.upsert({ ...r, joined: true });
    this.notify({ kind: "rooms" });
    // a new DM comes without the other person's name: the list endpoint has it
    if (r.kind === "direct" && !this.rooms.get(r.id)?.peer) void this.refreshRooms();
  }

  onMember(e: MemberEvent, joined: boolean): void {
    const list = this.members.get(e.room_id);
    if (list) {
      const rest = list.filter((u) => u.id !== e.user.id);
      this.members.set(e.room_id, joined ? [...rest, { ...e.user, last_seen: null }] : rest);
    }
    const room = this.rooms.get(e.room_id);
    if (room?.members_count !== undefined) room.members_count += joined ? 1 : -1;
    // presence events only reach co-members, so member:joined says the newcomer's presence; when
    // it cannot (Redis away), a joiner of a public room is online: joining takes a socket
    if (joined && e.presence) this.presence.set(e.user.id, e.presence);
    else if (joined && room?.kind === "public" && !this.presence.has(e.user.id)) this.presence.set(e.user.id, "online");
    if (!joined && e.user.id === this.deps.me()?.id) this.forget(e.room_id);
    this.notify({ kind: "members", roomId: e.room_id });
  }

  /** A conversation from an event, or (`reply`) from the answer to one of the viewer's actions. */
  onConversation(c: Conversation, reply = false): void {
    if (reply) this.inbox.upsertReply(c);
    else this.inbox.upsert(c);
    this.notify({ kind: "inbox" });
  }

  /** `conversation:hidden`: routed or transferred away from what the viewer sees. */
  onConversationHidden(roomId: number): void {
    this.inbox.hide(roomId);
    this.notify({ kind: "inbox" });
  }

  onContact(c: Contact): void {
    this.contacts.set(c.id, c);
    this.notify({ kind: "contact", contactId: c.id });
  }

  /** Loads every label (staff), once: later changes arrive as events. */
  async loadLabels(): Promise<Label[]> {
    if (!this.labelsLoaded) {
      const r = await this.deps.call<{ labels: Label[] }>("GET", "/api/v1/labels");
      this.labelsLoaded = true;
      this.setLabels(r.labels);
    }
    return [...this.labels.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  setLabels(list: readonly Label[]): void {
    this.labels.clear();
    for (const l of list) this.labels.set(l.id, l);
    this.notify({ kind: "labels" });
  }

  onLabel(l: Label): void {
    this.labels.set(l.id, l);
    this.inbox.relabel(l);
    for (const c of this.contacts.values()) c.labels = c.labels.map((x) => (x.id === l.id ? { ...x, name: l.name, color: l.color } : x));
    this.notify({ kind: "labels" });
    this.notify({ kind: "inbox" });
  }

  onLabelDeleted(id: number): void {
    this.labels.delete(id);
    this.inbox.dropLabel(id);
    for (const c of this.contacts.values()) c.labels = c.labels.filter((x) => x.id !== id);
    this.notify({ kind: "labels" });
    this.notify({ kind: "inbox" });
  }

  onNote(n: Note): void {
    this.notes.add(n);
    this.notify({ kind: "notes", roomId: n.room_id });
  }

  /** Loads a WhatsApp conversation's private notes (staff). */
  async loadNotes(roomId: number): Promise<void> {
    const r = await this.deps.call<{ notes: Note[] }>("GET", `/api/v1/wa/conversations/${roomId}/notes`);
    this.notes.setAll(roomId, r.notes);
    this.notify({ kind: "notes", roomId });
  }

  /** Adds a private note; it shows at once (the live event for it is then a no-op). */
  async addNote(roomId: number, body: string): Promise<void> {
    const r = await this.deps.call<{ note: Note }>("POST", `/api/v1/wa/conversations/${roomId}/notes`, { body });
    this.onNote(r.note);
  }

  onWaStatus(s: WaStatusEvent): void {
    this.inbox.setStatus(s.message_id, s.status);
    this.notify({ kind: "messages", roomId: s.room_id });
  }

  // --- rooms ------------------------------------------------------------------------------------

  /** The whole room list, page by page (the server pages `GET /rooms` by room id). */
  async refreshRooms(): Promise<void> {
    const all: Room[] = [];
    const since = this.rooms.stamp(); // what changes here meanwhile stays (a join acked)
    let after: number | null = null;
    for (let page = 0; page < ROOM_PAGES_MAX; page++) {
      const path: string = after === null ? "/api/v1/rooms" : `/api/v1/rooms?after_id=${after}`;
      const data: RoomPage = await this.deps.call<RoomPage>("GET", path);
      all.push(...data.rooms);
      if (!data.has_more || data.next_cursor == null) break;
      after = data.next_cursor;
    }
    this.rooms.setAll(all, since);
    this.seedPeerPresence(all);
    this.notify({ kind: "rooms" });
  }

  /**
   * Every DM shows its person's presence from the start: the room list carries each peer's
   * status, and `presence` events (which reach every co-member, so every DM peer) keep it live.
   * The assistant is always available.
   */
  seedPeerPresence(rooms: readonly Room[]): void {
    for (const r of rooms) {
      const p = r.peer;
      if (r.kind !== "direct" || !p) continue;
      if (p.kind === "assistant") this.presence.set(p.id, "online");
      else if (p.status) this.presence.set(p.id, p.status, p.last_seen ?? null);
    }
  }

  /** `room:updated`: a new name, topic or archived state, kept with this user's counts. */
  onRoomUpdated(r: Room): void {
    const prev = this.rooms.get(r.id);
    if (!prev) return;
    this.rooms.upsert({ ...r, joined: prev.joined, unread: prev.unread, last_read_seq: prev.last_read_seq,
      last_seq: Math.max(prev.last_seq, r.last_seq), peer: prev.peer, members_count: prev.members_count });
    this.notify({ kind: "rooms" });
  }

  /** `room:deleted`, or `member:removed` for this user: the room is gone from here. */
  onRoomGone(roomId: number): void {
    this.rooms.remove(roomId);
    this.messages(roomId).unload();
    this.members.delete(roomId);
    this.notify({ kind: "rooms" });
    this.notify({ kind: "gone", roomId });
  }

  /** Joins (public rooms) or subscribes, loads the latest page, members and presence. */
  async openRoom(roomId: number): Promise<AckError | null> {
    const early: Message[] = [];
    this.joining.set(roomId, early);
    let ack: Ack<JoinResult>;
    try {
      ack = await this.deps.emit<JoinResult>("room:join", { room_id: roomId });
    } finally {
      if (this.joining.get(roomId) === early) this.joining.delete(roomId);
    }
    if (!ack.ok) return ack.error;
    const prev = this.rooms.get(roomId);
    this.rooms.upsert({ ...ack.room, joined: ack.room.kind === "whatsapp" ? prev?.joined : true, peer: prev?.peer,
      ...(ack.mentions !== undefined ? { mentions: ack.mentions } : {}), ...(ack.notify ? { notify: ack.notify } : {}) });
    this.members.set(roomId, ack.members);
    this.receipts.reset(roomId, ack.read_cursors);
    for (const u of ack.members) this.presence.set(u.id, ack.presence[String(u.id)] ?? "offline", u.last_seen);
    const rm = this.messages(roomId);
    // a room already held stays held (older pages included) unless the new page leaves a hole
    if (!rm.loaded || rm.add(ack.messages).gapAfter !== null) rm.reset(ack.messages, ack.has_more);
    if (early.length) this.accept(roomId, early); // counted and shown as if they came now
    this.notify({ kind: "rooms" });
    this.notify({ kind: "members", roomId });
    this.notify({ kind: "messages", roomId, stick: true });
    await this.markRead(roomId);
    return null;
  }

  async leave(roomId: number): Promise<AckError | null> {
    const ack = await this.deps.emit("room:leave", { room_id: roomId });
    if (!ack.ok) return ack.error;
    this.forget(roomId);
    return null;
  }

  /** One more page of older history; false when there is none or a load is under way. */
  async loadOlder(roomId: number): Promise<boolean> {
    const rm = this.messages(roomId);
    if (!rm.hasMore || this.olderLoading.has(roomId)) return false;
    this.olderLoading.add(roomId);
    try {
      const before = rm.firstSeq();
      const ack = await this.deps.emit<HistoryResult>("history", { room_id: roomId, limit: HISTORY_PAGE, ...(before ? { before_seq: before } : {}) });
      if (!ack.ok) return false;
      rm.add(ack.messages);
      rm.hasMore = ack.has_more;
      rm.olderHeldBack = ack.archive_pending ? "archive_pending" : ack.archive_unavailable ? "archive_unavailable" : null;
      this.notify({ kind: "messages", roomId });
      return ack.messages.length > 0;
    } finally {
      this.olderLoading.delete(roomId);
    }
  }

  /** Marks what is held of a visible room as read (server cursor and local unread count). */
  async markRead(roomId: number): Promise<void> {
    const room = this.rooms.get(roomId);
    const seq = Math.max(this.messages(roomId).lastSeq(), room?.last_seq ?? 0);
    if (!room || seq === 0 || !this.deps.isVisible(roomId)) return;
    const already = (room.last_read_seq ?? 0) >= seq && !room.unread;
    this.rooms.markRead(roomId, seq);
    this.notify({ kind: "rooms" });
    if (already) return;
    if (room.kind === "whatsapp") {
      const conv = this.inbox.get(roomId);
      if (conv?.unread) {
        const r = await this.deps.call<{ conversation: Conversation }>("POST", `/api/v1/wa/conversations/${roomId}/read`, { seq }).catch(() => null);
        if (r) this.onConversation(r.conversation);
      }
    } else if (room.joined) {
      await this.sendRead(roomId);
    }
  }

  /** One `read` in flight per room; a burst of messages ends in one more with the newest seq. */
  private async sendRead(roomId: number): Promise<void> {
    if (this.reading.has(roomId)) {
      this.reading.set(roomId, true);
      return;
    }
    this.reading.set(roomId, false);
    try {
      let again = true;
      while (again) {
        const seq = this.rooms.get(roomId)?.last_read_seq ?? 0;
        const ack = await this.deps.emit<{ last_read_seq: number; mentions?: number }>("read", { room_id: roomId, seq });
        const room = this.rooms.get(roomId);
        if (ack.ok && room && ack.mentions !== undefined && ack.last_read_seq >= (room.last_read_seq ?? 0)) {
          room.mentions = ack.mentions;
          this.notify({ kind: "rooms" });
        }
        again = this.reading.get(roomId) === true;
        this.reading.set(roomId, false);
      }
    } finally {
      this.reading.delete(roomId);
    }
  }

  // --- sending ----------------------------------------------------------------------------------

  /** Shows the message as pending at once and sends it (now, or after the reconnect).
   * `attachments`: finished uploads (`POST /api/v1/uploads`); the body may then be empty. */
  async send(roomId: number, body: string, replyTo: number | null = null, attachments: readonly Attachment[] = []): Promise<PendingSend> {
    const p = this.messages(roomId).queue({
      client_id: newClientId(), room_id: roomId, body, reply_to: replyTo, created_at: new Date().toISOString(),
      ...(attachments.length ? { attachments: [...attachments] } : {}),
    });
    this.notify({ kind: "messages", roomId, stick: true });
    await this.deliver(p);
    return p;
  }

  /** The user asked to try a failed send again: same client_id, so never a duplicate. */
  async retry(roomId: number, clientId: string): Promise<void> {
    const p = this.messages(roomId).pending.get(clientId);
    if (!p || p.state === "sending") return;
    p.state = "queued";
    await this.deliver(p);
  }

  discard(roomId: number, clientId: string): void {
    this.messages(roomId).discard(clientId);
    this.notify({ kind: "messages", roomId });
  }

  async edit(roomId: number, id: number, body: string): Promise<AckError | null> {
    const ack = await this.deps.emit<{ message: Message }>("message:edit", { id, body });
    if (!ack.ok) return ack.error;
    this.onMessageUpdated(ack.message);
    return null;
  }

  /** Toggles this user's `emoji` on a message: removes it if they have it, else adds it. */
  async react(roomId: number, id: number, emoji: string): Promise<AckError | null> {
    const m = this.messages(roomId).get(id);
    const held = m ? reactionsOf(m).find((r) => r.emoji === emoji) : undefined;
    const on = !(held && this.myReactions.has(id, held, this.deps.me()?.id ?? null));
    const ack = await this.deps.emit<{ message: Message; mine: string[] }>("message:react", { id, emoji, on });
    if (!ack.ok) return ack.error;
    this.myReactions.set(id, ack.mine);
    if (!this.messages(roomId).update(ack.message)) return null;
    this.notify({ kind: "messages", roomId });
    return null;
  }

  async remove(roomId: number, id: number): Promise<AckError | null> {
    const ack = await this.deps.emit<{ message: Message }>("message:delete", { id });
    if (!ack.ok) return ack.error;
    this.onMessageUpdated(ack.message);
    return null;
  }

  // --- media ------------------------------------------------------------------------------------

  /**
   * The media of a message failed to load (its signed URLs expired) or the user asked to try
   * unavailable media again: fetch the history page around it again, whose records carry fresh
   * URLs, and apply them. Failures arriving together share one page. Without `force`, a message
   * is fetched again at most once per MEDIA_REFRESH_MS; false when nothing was fetched.
   */
  async refreshMedia(roomId: number, messageId: number, force = false): Promise<boolean> {
    const rm = this.messages(roomId);
    const m = rm.get(messageId);
    if (!m) return false;
    const last = this.mediaRefreshed.get(messageId);
    if (!force && last !== undefined && this.now() - last < MEDIA_REFRESH_MS) return false;
    this.mediaRefreshed.set(messageId, this.now());
    const inflight = this.mediaLoads.get(roomId);
    if (inflight && m.seq >= inflight.from && m.seq <= inflight.to) {
      await inflight.done;
      return true;
    }
    // a page around the message: its neighbours on screen have URLs of the same age
    const to = Math.max(m.seq, Math.min(rm.lastSeq(), m.seq + Math.floor(HISTORY_PAGE / 2)));
    const load = { from: to - HISTORY_PAGE + 1, to, done: this.loadMediaPage(roomId, to) };
    this.mediaLoads.set(roomId, load);
    try {
      await load.done;
    } finally {
      if (this.mediaLoads.get(roomId) === load) this.mediaLoads.delete(roomId);
    }
    return true;
  }

  /**
   * Fetch a WhatsApp contact's file again that the server could not fetch (staff only): the
   * answer is the message with the attachment pending, and message:updated follows when it is
   * ready or unavailable again.
   */
  async retryWhatsAppMedia(roomId: number, messageId: number, attachmentId: string): Promise<void> {
    const out = await this.deps.call<{ message: Message }>(
      "POST", `/api/v1/wa/conversations/${roomId}/media/${encodeURIComponent(attachmentId)}/retry`);
    if (out.message.id === messageId) this.onMessageUpdated(out.message);
  }

  /** The media URLs held for the message are old enough to have expired. */
  mediaStale(roomId: number, messageId: number): boolean {
    const at = this.messages(roomId).receivedAt(messageId);
    return at !== undefined && this.now() - at >= MEDIA_URL_FRESH_MS;
  }

  private async loadMediaPage(roomId: number, to: number): Promise<void> {
    const ack = await this.deps.emit<HistoryResult>("history", { room_id: roomId, before_seq: to + 1, limit: HISTORY_PAGE });
    if (!ack.ok) return;
    const rm = this.messages(roomId);
    let changed = false;
    // a copy without `attachments` (from the archive, or an older server) would drop the files
    for (const m of ack.messages) if (Array.isArray(m.attachments)) changed = rm.update(m) || changed;
    if (changed) this.notify({ kind: "messages", roomId });
  }

  // --- reconnect --------------------------------------------------------------------------------

  /**
   * After every (re)connect: replay what was missed in the rooms held (`sync` by last seq),
   * reload the rooms the server says are too far behind, re-send pending messages in order,
   * and refresh the room list (unread counts of rooms not held).
   */
  async resume(): Promise<void> {
    const cursors: Record<string, number> = {};
    for (const [id, rm] of this.msgs) if (rm.loaded) cursors[id] = rm.lastSeq();
    if (Object.keys(cursors).length) {
      const since = this.changedSince();
      const ack = await this.deps.emit<SyncResult>("sync", since ? { cursors, changed_since: since } : { cursors });
      if (ack.ok) await this.applySync(ack);
      else for (const id of Object.keys(cursors)) await this.reload(Number(id));
    }
    for (const rm of this.msgs.values()) for (const p of rm.unsent()) await this.deliver(p);
    await this.refreshRooms().catch(() => undefined);
  }

  /** Merges a `sync` answer; rooms marked `resync` get their latest page again. */
  async applySync(result: SyncResult): Promise<void> {
    for (const [key, r] of Object.entries(result.rooms)) {
      const roomId = Number(key);
      if (r.resync) await this.reload(roomId);
      else this.accept(roomId, r.messages);
      // edits and deletions made while away, to messages already shown
      if (!r.resync) for (const m of r.changed ?? []) this.onMessageUpdated(m);
    }
    if (result.as_of && (this.asOf === null || result.as_of > this.asOf)) this.asOf = result.as_of;
  }

  /** The newest server time this client has seen (ISO strings in one format compare as times):
   * the last sync's `as_of` or the newest timestamp on a message it holds. */
  private changedSince(): string | null {
    let t = this.asOf;
    for (const rm of this.msgs.values())
      for (const m of rm.sorted())
        for (const v of [m.created_at, m.edited_at, m.deleted_at]) if (v && (t === null || v > t)) t = v;
    return t;
  }

  // --- internals --------------------------------------------------------------------------------

  private accept(roomId: number, messages: readonly Message[]): void {
    const me = this.deps.me()?.id ?? null;
    const visible = this.deps.isVisible(roomId);
    let roomsChanged = false;
    for (const m of messages) {
      roomsChanged = this.rooms.onMessage(m, me, visible) || roomsChanged;
      if (m.author_id !== null) this.typingIn(roomId).clear(m.author_id);
      const replyId = m.meta?.reply_id;
      if (typeof replyId === "string") this.streams.delete(replyId);
    }
    const rm = this.messages(roomId);
    if (rm.loaded) {
      const { added, gapAfter } = rm.add(messages);
      if (gapAfter !== null) void this.fillGap(roomId, gapAfter);
      if (added.length || messages.some((m) => m.client_id)) this.notify({ kind: "messages", roomId, stick: true });
      if (added.length && visible) void this.markRead(roomId);
    } else {
      for (const m of messages) if (m.client_id) rm.pending.delete(m.client_id); // the ack of a send
      this.joining.get(roomId)?.push(...messages);
    }
    if (roomsChanged) this.notify({ kind: "rooms" });
    this.notify({ kind: "typing", roomId });
  }

  private async fillGap(roomId: number, after: number): Promise<void> {
    if (this.filling.has(roomId)) return;
    this.filling.add(roomId);
    try {
      const ack = await this.deps.emit<SyncResult>("sync", { cursors: { [roomId]: after } });
      if (ack.ok) await this.applySync(ack);
    } finally {
      this.filling.delete(roomId);
    }
  }

  /** The room is too far behind: on screen, fetch the latest page; otherwise forget it until opened. */
  private async reload(roomId: number): Promise<void> {
    if (this.deps.isVisible(roomId)) {
      const rm = this.messages(roomId);
      rm.unload();
      await this.openRoom(roomId);
    } else {
      this.messages(roomId).unload();
    }
  }

  private async deliver(p: PendingSend): Promise<void> {
    const rm = this.messages(p.room_id);
    if (p.state === "sending" || !rm.pending.has(p.client_id)) return;
    if (!this.deps.connected()) {
      rm.setPending(p.client_id, "queued"); // goes out from resume() after the reconnect
      this.notify({ kind: "messages", roomId: p.room_id });
      return;
    }
    rm.setPending(p.client_id, "sending");
    const ack = await this.deps.emit<{ message: Message }>("message:send", {
      room_id: p.room_id, body: p.body, client_id: p.client_id, ...(p.reply_to ? { reply_to: p.reply_to } : {}),
      ...(p.attachments?.length ? { attachments: p.attachments.map((a) => a.id) } : {}),
    });
    if (ack.ok) {
      this.accept(p.room_id, [ack.message]);
      return;
    }
    const { code, message, details } = ack.error;
    if (RETRYABLE.has(code)) {
      rm.setPending(p.client_id, "queued", code === "offline" ? undefined : message);
      const after = typeof details?.retry_after === "number" ? Math.ceil(details.retry_after * 1000) : RETRY_DELAY_MS;
      if (code !== "offline") this.later(() => void this.deliver(p), after);
    } else {
      rm.setPending(p.client_id, "failed", message); // e.g. outside the WhatsApp 24-hour window
    }
    this.notify({ kind: "messages", roomId: p.room_id });
  }

  private forget(roomId: number): void {
    const room = this.rooms.get(roomId);
    if (room && room.kind === "public") this.rooms.upsert({ id: roomId, joined: false, unread: 0 });
    else this.rooms.remove(roomId);
    this.messages(roomId).unload();
    this.members.delete(roomId);
    this.notify({ kind: "rooms" });
  }

  private notify(c: Change): void {
    for (const fn of this.listeners) fn(c);
  }
}
