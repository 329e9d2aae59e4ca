// The messages of one room as the client holds them.
//
// Order always comes from `seq` (never from arrival time); the same message may arrive several
// times (live event, the send ack, a sync replay, a history page) and is kept once, by `id`.
// Own sends are pending, keyed by their `client_id`, until a message with that `client_id`
// arrives; the server dedupes a resend with the same `client_id`, so retrying is always safe.
import type { Attachment, Message } from "../types";
import { reactionsSig } from "./reactions";

export type PendingState = "sending" | "queued" | "failed";

export interface PendingSend {
  client_id: string;
  room_id: number;
  body: string;
  reply_to: number | null;
  created_at: string;
  /** Finished uploads sent with it (shown at once; their ids go in `attachments`). */
  attachments?: Attachment[];
  state: PendingState;
  error?: string;
}

export interface AddResult {
  /** Messages that were not known before, ascending by seq. */
  added: Message[];
  /**
   * The cursor to `sync` from when messages are missing between the newest one held before this
   * call and the newest one now (`seq` jumped), else null.
   */
  gapAfter: number | null;
}

export class RoomMessages {
  /** True once the latest page was fetched; live events of rooms never opened are not kept. */
  loaded = false;
  /** Older history exists before the first held message (hot store or archive). */
  hasMore = true;
  /** Why the last page of older history stopped short; older messages exist, ask again later. */
  olderHeldBack: "archive_pending" | "archive_unavailable" | null = null;
  readonly pending = new Map<string, PendingSend>();
  /** The clock of `receivedAt`, replaceable in tests. */
  clock: () => number = Date.now;
  private readonly byId = new Map<number, Message>();
  private readonly received = new Map<number, number>();
  private readonly seqs = new Set<number>();
  private cache: Message[] | null = null;

  get size(): number {
    return this.byId.size;
  }

  get(id: number): Message | undefined {
    return this.byId.get(id);
  }

  /** Merges messages (any order, duplicates allowed) and reports new ones and gaps. */
  add(messages: readonly Message[]): AddResult {
    const before = this.lastSeq();
    const added: Message[] = [];
    for (const m of messages) {
      if (m.client_id) this.pending.delete(m.client_id);
      const known = this.byId.get(m.id);
      if (known && !isNewer(m, known)) {
        // the same message again (a page, a sync replay): its media URLs are the fresher ones
        // (a copy without the field, from an older server or the archive, says nothing of them)
        if (Array.isArray(m.attachments) && !isNewer(known, m) && mediaUrls(m) !== mediaUrls(known)) this.store({ ...known, attachments: m.attachments });
        // reactions change without a timestamp: a later copy (a page, a sync) carries the later ones
        if (Array.isArray(m.reactions) && !isNewer(known, m) && reactionsSig(m) !== reactionsSig(known)) this.store({ ...this.byId.get(m.id)!, reactions: m.reactions });
        continue;
      }
      this.store(m);
      this.seqs.add(m.seq);
      if (!known) added.push(m);
    }
    added.sort((a, b) => a.seq - b.seq);
    return { added, gapAfter: this.firstGapAfter(before) };
  }

  /** Applies an edit or deletion; false when the message is not held (nothing to update). */
  update(m: Message): boolean {
    if (!this.byId.has(m.id)) return false;
    this.store(m);
    return true;
  }

  /** When the copy held of a message arrived (ms): its signed media URLs are as old. */
  receivedAt(id: number): number | undefined {
    return this.received.get(id);
  }

  /** Drops everything held and starts again from a fresh latest page (after a `resync`). */
  reset(page: readonly Message[], hasMore: boolean): void {
    this.byId.clear();
    this.received.clear();
    this.seqs.clear();
    this.cache = null;
    this.add(page);
    this.hasMore = hasMore;
    this.loaded = true;
  }

  unload(): void {
    this.byId.clear();
    this.received.clear();
    this.seqs.clear();
    this.cache = null;
    this.loaded = false;
    this.hasMore = true;
  }

  /** Ascending by seq. */
  sorted(): readonly Message[] {
    this.cache ??= [...this.byId.values()].sort((a, b) => a.seq - b.seq);
    return this.cache;
  }

  lastSeq(): number {
    const all = this.sorted();
    return all.length ? all[all.length - 1].seq : 0;
  }

  firstSeq(): number | null {
    const all = this.sorted();
    return all.length ? all[0].seq : null;
  }

  /** The newest own, not deleted message (ArrowUp in an empty composer edits it). */
  lastOwn(userId: number): Message | undefined {
    const all = this.sorted();
    for (let i = all.length - 1; i >= 0; i--) if (all[i].author_id === userId && !all[i].deleted_at) return all[i];
    return undefined;
  }

  // --- pending sends ----------------------------------------------------------------------------

  queue(p: Omit<PendingSend, "state"> & { state?: PendingState }): PendingSend {
    const existing = this.pending.get(p.client_id);
    if (existing) return existing;
    const entry: PendingSend = { ...p, state: p.state ?? "queued" };
    this.pending.set(p.client_id, entry);
    return entry;
  }

  setPending(clientId: string, state: PendingState, error?: string): void {
    const p = this.pending.get(clientId);
    if (p) {
      p.state = state;
      p.error = error;
    }
  }

  discard(clientId: string): void {
    this.pending.delete(clientId);
  }

  /** Pending sends to (re)send after a reconnect, in the order they were written. */
  unsent(): PendingSend[] {
    return [...this.pending.values()].filter((p) => p.state !== "failed");
  }

  private store(m: Message): void {
    this.byId.set(m.id, m);
    this.received.set(m.id, this.clock());
    this.cache = null;
  }

  private firstGapAfter(before: number): number | null {
    if (before === 0) return null; // nothing held yet: a first message cannot show a gap
    const newest = this.lastSeq();
    for (let s = before + 1; s < newest; s++) if (!this.seqs.has(s)) return s - 1;
    return null;
  }
}

/** The files of a message: [] when it has none or came from a server before uploads. */
export function attachmentsOf(m: { attachments?: Attachment[] | null }): Attachment[] {
  return Array.isArray(m.attachments) ? m.attachments : [];
}

function mediaUrls(m: Message): string {
  return attachmentsOf(m).map((a) => `${a.url} ${a.thumb_url ?? ""}`).join(" ");
}

/** An edited or deleted copy wins over an older copy of the same message. */
function isNewer(m: Message, known: Message): boolean {
  if (m.deleted_at && !known.deleted_at) return true;
  if (m.edited_at && (!known.edited_at || m.edited_at > known.edited_at)) return true;
  return false;
}
