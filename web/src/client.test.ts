import { describe, expect, it } from "vitest";
import { ChatClient, type Change, MEDIA_REFRESH_MS, MEDIA_URL_FRESH_MS } from "./client";
import { msg, uploaded } from "./testing";
import type { Ack, Attachment, Message, Room } from "./types";

const ME = { id: 1, username: "me", display_name: "Me", role: "user" as const, kind: "human" };

/**
 * A small in-memory stand-in for chat-server's socket API: per-room seq, idempotent sends on
 * client_id, sync from a cursor, history pages. Only the contract, none of the server's code.
 */
class FakeServer {
  connected = true;
  log: { event: string; data: any }[] = [];
  messages = new Map<number, Message[]>();
  /** Stored uploads by id, as `POST /uploads` made them. */
  uploads = new Map<string, Attachment>();
  failNext: Record<string, { code: string; message: string; details?: Record<string, unknown> }> = {};
  resyncRooms = new Set<number>();
  /** History answers `archive_pending` below this seq (0: never). */
  archiveBelow = 0;
  private nextId = 1000;
  now = "2026-11-23T10:00:00.000Z";

  /** An edit made on the server (by someone else) at `at`. */
  edit(roomId: number, seq: number, body: string, at: string): void {
    const list = this.messages.get(roomId)!;
    list[seq - 1] = { ...list[seq - 1], body, edited_at: at };
  }

  post(roomId: number, authorId: number, body: string, clientId: string | null = null): Message {
    const list = this.messages.get(roomId) ?? [];
    const m = msg(this.nextId++, list.length + 1, { room_id: roomId, author_id: authorId, body, client_id: clientId });
    list.push(m);
    this.messages.set(roomId, list);
    return m;
  }

  emit = async <T,>(event: string, data: any): Promise<Ack<T>> => {
    this.log.push({ event, data });
    if (!this.connected) return { ok: false, error: { code: "offline", message: "offline" } };
    const fail = this.failNext[event];
    if (fail) {
      delete this.failNext[event];
      return { ok: false, error: fail };
    }
    const list = this.messages.get(data.room_id) ?? [];
    switch (event) {
      case "room:join":
        return { ok: true, room: joinedRoom(data.room_id, list.length), members: [{ ...ME, last_seen: null }], presence: { 1: "online" }, messages: list.slice(-3), has_more: list.length > 3 } as Ack<T>;
      case "message:send": {
        const dup = list.find((m) => m.client_id === data.client_id && m.author_id === ME.id);
        if (dup) return { ok: true, message: dup } as Ack<T>;
        const m = this.post(data.room_id, ME.id, data.body, data.client_id);
        m.attachments = ((data.attachments ?? []) as string[]).map((id) => this.uploads.get(id)!);
        return { ok: true, message: m } as Ack<T>;
      }
      case "history": {
        const older = list.filter((m) => m.seq < (data.before_seq ?? Infinity));
        if (this.archiveBelow > 0) {
          // seqs up to archiveBelow left the hot store and have not reached the archive yet
          const hot = older.filter((m) => m.seq > this.archiveBelow).slice(-data.limit);
          if (hot.length < data.limit) return { ok: true, messages: hot, has_more: true, archive_pending: true } as Ack<T>;
        }
        return { ok: true, messages: older.slice(-data.limit), has_more: older.length > data.limit } as Ack<T>;
      }
      case "sync": {
        const rooms: Record<string, { messages: Message[]; resync: boolean; changed?: Message[] }> = {};
        const since: string | undefined = data.changed_since;
        for (const [id, cursor] of Object.entries(data.cursors as Record<string, number>)) {
          const all = this.messages.get(Number(id)) ?? [];
          rooms[id] = this.resyncRooms.has(Number(id)) ? { messages: [], resync: true } : { messages: all.filter((m) => m.seq > cursor), resync: false };
          if (since && !rooms[id].resync)
            rooms[id].changed = all.filter((m) => m.seq <= cursor && ((m.edited_at ?? "") >= since || (m.deleted_at ?? "") >= since));
        }
        return { ok: true, rooms, as_of: this.now } as Ack<T>;
      }
      default:
        return { ok: true } as Ack<T>;
    }
  };

  sent(event: string) {
    return this.log.filter((e) => e.event === event).map((e) => e.data);
  }
}

function room(id: number, lastSeq = 0, extra: Partial<Room> = {}): Room {
  return { id, slug: `r${id}`, name: `room ${id}`, kind: "public", topic: "", last_seq: lastSeq, joined: true, unread: 0, last_read_seq: lastSeq, ...extra };
}

function setup(opts: { visible?: number | null } = {}) {
  const server = new FakeServer();
  const timers: { fn: () => void; ms: number }[] = [];
  const changes: Change[] = [];
  let visible = opts.visible === undefined ? 1 : opts.visible;
  const rest: { method: string; path: string; body?: unknown }[] = [];
  const clock = { now: 1_000_000 };
  const client = new ChatClient({
    now: () => clock.now,
    me: () => ME,
    emit: server.emit,
    connected: () => server.connected,
    isVisible: (id) => id === visible,
    call: async <T,>(method: string, path: string, body?: unknown) => {
      rest.push({ method, path, body });
      return { rooms: [...server.messages.keys()].map((id) => room(id, server.messages.get(id)!.length)) } as T;
    },
    setTimeout: (fn, ms) => timers.push({ fn, ms }),
  });
  client.subscribe((c) => changes.push(c));
  return { server, client, timers, changes, rest, clock, show: (id: number | null) => { visible = id; } };
}

/** The room record of a `room:join` ack: no read cursor or unread count in it. */
function joinedRoom(id: number, lastSeq: number): Room {
  const { unread: _u, last_read_seq: _r, ...rest } = room(id, lastSeq);
  return rest;
}

const bodies = (client: ChatClient, roomId = 1) => client.messages(roomId).sorted().map((m) => m.body);

describe("ChatClient sending", () => {
  it("shows a send as pending, then as the acked message, once", async () => {
    const { server, client } = setup();
    server.post(1, 2, "hello");
    await client.openRoom(1);
    const sending = client.send(1, "hi there");
    expect([...client.messages(1).pending.values()].map((p) => p.body)).toEqual(["hi there"]);
    await sending;
    expect(client.messages(1).pending.size).toBe(0);
    expect(bodies(client)).toEqual(["hello", "hi there"]);
    // the room broadcast of the same message arrives after the ack: still shown once
    client.onMessage(server.messages.get(1)![1]);
    expect(bodies(client)).toEqual(["hello", "hi there"]);
  });

  it("keeps sends written offline and sends them after the reconnect with the same client_id, in order", async () => {
    const { server, client } = setup();
    await client.openRoom(1);
    server.connected = false;
    await client.send(1, "one");
    await client.send(1, "two");
    const pending = [...client.messages(1).pending.values()];
    expect(pending.map((p) => p.state)).toEqual(["queued", "queued"]);
    expect(server.sent("message:send")).toEqual([]); // nothing goes out while offline
    server.connected = true;
    await client.resume();
    expect(bodies(client)).toEqual(["one", "two"]);
    expect(client.messages(1).pending.size).toBe(0);
    expect(server.sent("message:send").map((d) => d.client_id)).toEqual(pending.map((p) => p.client_id));
  });

  it("a resend after a lost ack does not duplicate (the server dedupes on client_id)", async () => {
    const { server, client, timers } = setup();
    await client.openRoom(1);
    server.failNext["message:send"] = { code: "timeout", message: "no answer" };
    await client.send(1, "once");
    // the server never answered, but the message may have been stored: simulate that
    const p = [...client.messages(1).pending.values()][0];
    server.post(1, ME.id, "once", p.client_id);
    expect(timers).toHaveLength(1);
    timers[0].fn();
    await new Promise((r) => setTimeout(r, 0));
    expect(bodies(client)).toEqual(["once"]);
    expect(server.messages.get(1)).toHaveLength(1);
  });

  it("retries after rate limiting when the server says, and fails for good on invalid", async () => {
    const { server, client, timers } = setup();
    await client.openRoom(1);
    server.failNext["message:send"] = { code: "rate_limited", message: "slow down", details: { retry_after: 2.5 } };
    await client.send(1, "later");
    expect(timers[0].ms).toBe(2500);
    server.failNext["message:send"] = { code: "invalid", message: "outside the 24-hour window" };
    const p = await client.send(1, "never");
    expect(p.state).toBe("failed");
    expect(p.error).toBe("outside the 24-hour window");
    await client.resume();
    expect(client.messages(1).pending.get(p.client_id)?.state).toBe("failed"); // not re-sent by itself
    await client.retry(1, p.client_id);
    expect(bodies(client)).toContain("never");
  });
});

describe("ChatClient receiving", () => {
  it("fills a seq gap in live messages with sync from the last contiguous seq", async () => {
    const { server, client } = setup();
    for (const b of ["a", "b", "c"]) server.post(1, 2, b);
    await client.openRoom(1);
    server.post(1, 2, "d");
    const e = server.post(1, 2, "e");
    client.onMessage(e); // "d" was missed
    await new Promise((r) => setTimeout(r, 0));
    expect(server.sent("sync")).toEqual([{ cursors: { 1: 3 } }]);
    expect(bodies(client)).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("after a reconnect, syncs each held room from its last seq and merges without duplicates", async () => {
    const { server, client } = setup();
    server.post(1, 2, "a");
    server.post(2, 2, "x");
    await client.openRoom(1);
    await client.openRoom(2);
    server.post(1, 2, "b");
    server.post(1, 2, "c");
    client.onMessage(server.messages.get(1)![1]); // "b" arrived before the cut
    await client.resume();
    expect(server.sent("sync")[0]).toEqual({ cursors: { 1: 2, 2: 1 }, changed_since: "2026-11-23T10:00:00Z" });
    expect(bodies(client, 1)).toEqual(["a", "b", "c"]);
    expect(bodies(client, 2)).toEqual(["x"]);
  });

  it("reloads the latest page of a visible room the server marks resync, and forgets hidden ones", async () => {
    const { server, client } = setup();
    server.post(1, 2, "a");
    server.post(2, 2, "x");
    await client.openRoom(2);
    await client.openRoom(1);
    for (let i = 0; i < 5; i++) server.post(1, 2, `n${i}`);
    server.resyncRooms = new Set([1, 2]);
    await client.resume();
    expect(bodies(client, 1)).toEqual(["n2", "n3", "n4"]); // the fake's latest page is 3 long
    expect(client.messages(1).hasMore).toBe(true);
    expect(client.messages(2).loaded).toBe(false);
  });

  it("keeps older history reachable while the archive catches up, and says why", async () => {
    const { server, client } = setup();
    for (let i = 1; i <= 7; i++) server.post(1, 2, `m${i}`);
    await client.openRoom(1);
    server.archiveBelow = 3;
    await client.loadOlder(1);
    expect(bodies(client)).toEqual(["m4", "m5", "m6", "m7"]);
    expect(client.messages(1).hasMore).toBe(true);
    expect(client.messages(1).olderHeldBack).toBe("archive_pending");
    server.archiveBelow = 0;
    await client.loadOlder(1);
    expect(server.sent("history")[1]).toEqual({ room_id: 1, limit: 50, before_seq: 4 });
    expect(bodies(client)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    expect(client.messages(1).olderHeldBack).toBe(null);
    expect(client.messages(1).hasMore).toBe(false);
  });

  it("pages older history in before the first held message", async () => {
    const { server, client } = setup();
    for (let i = 1; i <= 7; i++) server.post(1, 2, `m${i}`);
    await client.openRoom(1);
    expect(bodies(client)).toEqual(["m5", "m6", "m7"]);
    await client.loadOlder(1);
    expect(server.sent("history")[0]).toEqual({ room_id: 1, limit: 50, before_seq: 5 });
    expect(bodies(client)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    expect(client.messages(1).hasMore).toBe(false);
    expect(await client.loadOlder(1)).toBe(false);
  });

  it("counts unread messages in rooms not on screen and marks the visible room read", async () => {
    const { server, client, show } = setup({ visible: null });
    client.rooms.setAll([room(1), room(2)]);
    client.onMessage(server.post(2, 2, "hey"));
    client.onMessage(server.post(2, 2, "you"));
    client.onMessage(server.post(2, ME.id, "mine"));
    expect(client.rooms.get(2)?.unread).toBe(2);
    show(2);
    await client.openRoom(2);
    expect(client.rooms.get(2)?.unread).toBe(0);
    expect(server.sent("read").at(-1)).toEqual({ room_id: 2, seq: 3 });
    client.onMessage(server.post(2, 2, "seen"));
    await new Promise((r) => setTimeout(r, 0));
    expect(client.rooms.get(2)?.unread).toBe(0);
    expect(server.sent("read").at(-1)).toEqual({ room_id: 2, seq: 4 });
  });

  it("streams assistant deltas into one bubble until the final message replaces it", async () => {
    const { server, client } = setup();
    await client.openRoom(1);
    client.onDelta({ room_id: 1, reply_id: "r1", text: "Hel" });
    client.onDelta({ room_id: 1, reply_id: "r1", text: "lo" });
    expect(client.liveStreams(1).map(([, s]) => s.text)).toEqual(["Hello"]);
    const final = server.post(1, 99, "Hello");
    client.onMessage({ ...final, author_kind: "assistant", meta: { reply_id: "r1" } });
    expect(client.liveStreams(1)).toEqual([]);
    expect(bodies(client)).toEqual(["Hello"]);
  });

  it("shows who is typing, ignores own typing, and clears a typer when their message arrives", async () => {
    const { server, client } = setup();
    await client.openRoom(1);
    client.onTyping({ room_id: 1, user: { id: 2, display_name: "Bo" }, typing: true, ttl_ms: 6000 });
    client.onTyping({ room_id: 1, user: { id: ME.id, display_name: "Me" }, typing: true, ttl_ms: 6000 });
    expect(client.typingIn(1).names()).toEqual(["Bo"]);
    client.onMessage(server.post(1, 2, "done"));
    expect(client.typingIn(1).names()).toEqual([]);
  });

  it("applies edits and deletions by id", async () => {
    const { server, client } = setup();
    const m = server.post(1, ME.id, "typo");
    await client.openRoom(1);
    client.onMessageUpdated({ ...m, body: "", deleted_at: "2026-11-23T10:01:00Z" });
    expect(client.messages(1).get(m.id)?.deleted_at).toBe("2026-11-23T10:01:00Z");
  });

  it("keeps live messages of rooms never opened out of memory but counts them", async () => {
    const { server, client } = setup({ visible: null });
    client.rooms.setAll([room(5)]);
    client.onMessage(server.post(5, 2, "hi"));
    expect(client.messages(5).size).toBe(0);
    expect(client.rooms.get(5)?.unread).toBe(1);
  });

  it("still finds a live message of a room never opened when its mention comes, for the notification", async () => {
    const { server, client } = setup({ visible: null });
    client.rooms.setAll([room(5)]);
    const m = server.post(5, 2, "@me hello");
    client.onMessage(m);
    expect(client.findMessage(5, m.id)?.body).toBe("@me hello");
    expect(client.findMessage(6, m.id)).toBeUndefined(); // an id is only looked up in its own room
    expect(client.messages(5).size).toBe(0);
  });
});

describe("ChatClient members", () => {
  it("takes a newcomer's presence from member:joined, for public and private rooms alike", async () => {
    const { client } = setup();
    await client.openRoom(1);
    await client.openRoom(2);
    client.rooms.upsert({ id: 2, kind: "private" });
    const user = (id: number) => ({ id, username: `u${id}`, display_name: `U${id}`, role: "user" as const, kind: "human" });
    client.onMember({ room_id: 2, user: user(8), presence: "online" }, true); // invited while connected
    expect(client.presence.get(8).status).toBe("online");
    client.onMember({ room_id: 1, user: user(7), presence: "offline" }, true); // invited, not connected
    expect(client.presence.has(7) && client.presence.get(7).status).toBe("offline");
    client.onMember({ room_id: 1, user: user(9) }, true); // no presence said: a public room's joiner is online
    expect(client.presence.get(9).status).toBe("online");
  });
});

describe("ChatClient room list", () => {
  it("pages through GET /rooms with after_id until the server says there is no more", async () => {
    const all = Array.from({ length: 5 }, (_, i) => room(i + 1, 0));
    const paths: string[] = [];
    const client = new ChatClient({
      me: () => ME,
      emit: new FakeServer().emit,
      connected: () => true,
      isVisible: () => false,
      call: async <T,>(_method: string, path: string) => {
        paths.push(path);
        const after = Number(new URL(path, "http://x").searchParams.get("after_id") ?? 0);
        const page = all.filter((r) => r.id > after).slice(0, 2);
        const hasMore = page.length > 0 && page[page.length - 1].id < all[all.length - 1].id;
        return { rooms: page, has_more: hasMore, next_cursor: hasMore ? page[page.length - 1].id : null } as T;
      },
      setTimeout: () => undefined,
    });
    await client.refreshRooms();
    expect(paths).toEqual(["/api/v1/rooms", "/api/v1/rooms?after_id=2", "/api/v1/rooms?after_id=4"]);
    expect([1, 2, 3, 4, 5].every((id) => client.rooms.get(id) !== undefined)).toBe(true);
  });
});

describe("ChatClient room list and a join", () => {
  it("a list asked for before a join was acked does not undo the join", async () => {
    let answer: (v: unknown) => void = () => undefined;
    const client = new ChatClient({
      me: () => ME,
      emit: new FakeServer().emit,
      connected: () => true,
      isVisible: () => false,
      // the list leaves before the join and comes back after its ack, as the server saw it then
      call: <T,>() => new Promise<T>((resolve) => { answer = resolve as (v: unknown) => void; }),
      setTimeout: () => undefined,
    });
    const listed = client.refreshRooms();
    expect(await client.openRoom(1)).toBeNull();
    expect(client.rooms.get(1)?.joined).toBe(true);
    answer({ rooms: [room(1, 0, { joined: false }), room(2, 0, { joined: false })], has_more: false, next_cursor: null });
    await listed;
    expect(client.rooms.get(1)?.joined).toBe(true);
    expect(client.rooms.get(2)?.joined).toBe(false); // the rest of the list is taken as it came
    // a list asked for after the join is taken whole
    const again = client.refreshRooms();
    answer({ rooms: [room(1, 0, { joined: false })], has_more: false, next_cursor: null });
    await again;
    expect(client.rooms.get(1)?.joined).toBe(false);
    expect(client.rooms.get(2)).toBeUndefined();
  });
});

describe("ChatClient opening a room", () => {
  it("keeps a message heard live while the join was on its way, stored after the page it answered with", async () => {
    const server = new FakeServer();
    server.post(1, 2, "before");
    let client: ChatClient;
    const emit = async <T,>(event: string, data: any): Promise<Ack<T>> => {
      const ack = await server.emit<T>(event, data); // the page is read first
      if (event === "room:join") client.onMessage(server.post(1, 2, "during the join")); // then this arrives live
      return ack;
    };
    client = new ChatClient({ me: () => ME, emit, connected: () => true, isVisible: () => true, call: async <T,>() => ({ rooms: [] }) as T, setTimeout: () => undefined });
    expect(await client.openRoom(1)).toBeNull();
    expect(client.messages(1).sorted().map((m) => m.body)).toEqual(["before", "during the join"]);
    expect(client.rooms.get(1)?.last_seq).toBe(2);
  });
});

describe("ChatClient resume: edits made while away", () => {
  it("sends the newest server time it has seen and applies the edits and deletions sync returns", async () => {
    const { server, client } = setup();
    server.post(1, 2, "first");
    server.post(1, 2, "second");
    server.post(1, 2, "third");
    await client.openRoom(1);
    server.connected = false;
    server.edit(1, 1, "first, corrected", "2026-11-23T10:05:00.000Z");
    const list = server.messages.get(1)!;
    list[1] = { ...list[1], body: "", deleted_at: "2026-11-23T10:06:00.000Z" };
    server.post(1, 2, "fourth");
    server.now = "2026-11-23T10:07:00.000Z";
    server.connected = true;
    await client.resume();
    expect(server.sent("sync")[0].changed_since).toBe("2026-11-23T10:00:00Z"); // newest created_at held
    expect(bodies(client)).toEqual(["first, corrected", "", "third", "fourth"]);
    // the next resume asks from the answer's as_of
    await client.resume();
    expect(server.sent("sync")[1].changed_since).toBe("2026-11-23T10:07:00.000Z");
  });
});

describe("ChatClient attachments", () => {
  it("sends the finished uploads' ids as attachments, shows the files while pending, and accepts a message of files only", async () => {
    const { server, client } = setup();
    await client.openRoom(1);
    const files = [uploaded("u1", "cat.png"), uploaded("u2", "notes.pdf", "application/pdf")];
    for (const f of files) server.uploads.set(f.id, f);
    const sending = client.send(1, "", null, files);
    const pending = [...client.messages(1).pending.values()][0];
    expect(pending.attachments?.map((a) => a.id)).toEqual(["u1", "u2"]);
    await sending;
    const [data] = server.sent("message:send");
    expect(data.attachments).toEqual(["u1", "u2"]);
    expect(data.body).toBe("");
    const [m] = client.messages(1).sorted();
    expect(m.attachments?.map((a) => a.name)).toEqual(["cat.png", "notes.pdf"]);
    expect(client.messages(1).pending.size).toBe(0);
  });

  it("asks the server to fetch an unavailable WhatsApp file again and shows the message it answers", async () => {
    const { client } = setup();
    await client.openRoom(1);
    await client.send(1, "photo", null, []);
    const [m] = client.messages(1).sorted();
    const pendingAgain = { ...m, attachments: [{ id: "w1", name: "photo.jpg", mime: "image/jpeg", size: 0, url: null, thumb_url: null, width: null, height: null, status: "pending" as const }] };
    const calls: string[] = [];
    (client as unknown as { deps: { call: unknown } }).deps.call = async <T,>(method: string, path: string) => {
      calls.push(`${method} ${path}`);
      return { message: pendingAgain } as T;
    };
    await client.retryWhatsAppMedia(1, m.id, "w1");
    expect(calls).toEqual(["POST /api/v1/wa/conversations/1/media/w1/retry"]);
    expect(client.messages(1).get(m.id)?.attachments?.[0].status).toBe("pending");
  });

  it("sends no attachments field for a text message (older servers accept it as ever)", async () => {
    const { server, client } = setup();
    await client.openRoom(1);
    await client.send(1, "plain");
    expect("attachments" in server.sent("message:send")[0]).toBe(false);
  });

  it("fetches the page around a message again for fresh media URLs, one page for failures together, at most once a minute without force", async () => {
    const { server, client, clock } = setup();
    for (let i = 1; i <= 3; i++) server.post(1, 2, `p${i}`).attachments = [uploaded(`a${i}`, `p${i}.png`)];
    await client.openRoom(1);
    const [m1, m2, m3] = client.messages(1).sorted();
    // an hour later the signed URLs have expired; the server signs new ones
    for (const m of server.messages.get(1)!) m.attachments = m.attachments!.map((a) => ({ ...a, url: a.url.replace("sig=1", "sig=2") }));
    const results = await Promise.all([client.refreshMedia(1, m3.id), client.refreshMedia(1, m2.id)]);
    expect(results).toEqual([true, true]);
    expect(server.sent("history")).toEqual([{ room_id: 1, before_seq: 4, limit: 50 }]);
    expect(client.messages(1).sorted().map((m) => m.attachments![0].url)).toEqual([1, 2, 3].map((i) => `https://media.test/a${i}?sig=2`));
    // the fresh URL fails too: not an expiry, no loop of re-fetches
    expect(await client.refreshMedia(1, m3.id)).toBe(false);
    expect(server.sent("history")).toHaveLength(1);
    clock.now += MEDIA_REFRESH_MS + 1;
    expect(await client.refreshMedia(1, m3.id)).toBe(true);
    // the user's Retry (unavailable WhatsApp media) always asks again
    expect(await client.refreshMedia(1, m1.id, true)).toBe(true);
    expect(server.sent("history")).toHaveLength(3);
  });

  it("counts media URLs as stale once held for MEDIA_URL_FRESH_MS, fresh again after a refresh", async () => {
    const { server, client, clock } = setup();
    server.post(1, 2, "").attachments = [uploaded("d", "report.pdf", "application/pdf")];
    await client.openRoom(1);
    const [m] = client.messages(1).sorted();
    expect(client.mediaStale(1, m.id)).toBe(false);
    clock.now += MEDIA_URL_FRESH_MS;
    expect(client.mediaStale(1, m.id)).toBe(true);
    await client.refreshMedia(1, m.id, true);
    expect(client.mediaStale(1, m.id)).toBe(false);
  });

  it("a fetched copy without `attachments` (the archive, an older server) does not drop the files held", async () => {
    const { server, client } = setup();
    server.post(1, 2, "").attachments = [uploaded("a", "a.png")];
    await client.openRoom(1);
    const [m] = client.messages(1).sorted();
    const { attachments: _dropped, ...bare } = server.messages.get(1)![0];
    server.messages.get(1)![0] = bare; // a separate copy: the fake hands out its own objects
    await client.refreshMedia(1, m.id, true);
    expect(client.messages(1).get(m.id)!.attachments?.map((a) => a.id)).toEqual(["a"]);
  });
});
