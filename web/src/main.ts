// The browser app: auth, rooms and DMs, chat, assistant streaming, staff inbox, archive search, admin.
import { io, type Socket } from "socket.io-client";
import { Api, ApiError } from "./api";
import { clear, h, time } from "./dom";
import { RoomMessages, TypingState, newClientId } from "./store";
import type { Ack, Conversation, Message, Room, User } from "./types";

const api = new Api();
const app = document.getElementById("app")!;
const rooms = new Map<number, Room>();
const messages = new Map<number, RoomMessages>();
const typing = new Map<number, TypingState>();
const presence = new Map<number, { status: string; last_seen: string | null }>();
const streams = new Map<string, { room_id: number; text: string }>();
const waStatus = new Map<number, string>();
let socket: Socket | null = null;
let current: number | null = null;
let view: "chat" | "inbox" | "archive" | "admin" = "chat";
let conversations: Conversation[] = [];
let lastTypingSent = 0;

const roomMsgs = (id: number) => messages.get(id) ?? messages.set(id, new RoomMessages()).get(id)!;
const typingOf = (id: number) => typing.get(id) ?? typing.set(id, new TypingState()).get(id)!;
const isStaff = () => api.user?.role === "staff" || api.user?.role === "admin";

function emit<T>(event: string, data: unknown): Promise<Ack<T>> {
  return new Promise((resolve) => {
    if (!socket?.connected) return resolve({ ok: false, error: { code: "unavailable", message: "offline" } });
    socket.timeout(10000).emit(event, data, (err: unknown, ack: Ack<T>) =>
      resolve(err ? { ok: false, error: { code: "unavailable", message: "no answer" } } : ack));
  });
}

// ---- auth -------------------------------------------------------------------------------------

function authView(error = ""): void {
  clear(app);
  const user = h("input", { testid: "login-username", placeholder: "Username", autocomplete: "username", "aria-label": "Username" });
  const pass = h("input", { testid: "login-password", type: "password", placeholder: "Password", autocomplete: "current-password", "aria-label": "Password" });
  const phone = h("input", { testid: "otp-phone", placeholder: "+4915112345678", "aria-label": "Phone number" });
  const code = h("input", { testid: "otp-code", placeholder: "6-digit code", inputmode: "numeric", "aria-label": "Code" });
  const err = h("p", { class: "error", testid: "auth-error", role: "alert" }, error);
  const go = async (path: string, body: unknown) => {
    try { await api.login(path, body); await start(); } catch (e) { err.textContent = (e as Error).message; }
  };
  app.append(h("main", { class: "auth" },
    h("h1", {}, "Chat"),
    h("form", { onsubmit: (e) => { e.preventDefault(); void go("/api/v1/auth/login", { username: user.value, password: pass.value }); } },
      user, pass,
      h("button", { type: "submit", testid: "login-submit" }, "Log in"),
      h("button", { type: "button", testid: "register-submit", onclick: () => void go("/api/v1/auth/register", { username: user.value, password: pass.value }) }, "Create account")),
    h("details", {}, h("summary", {}, "Log in with a WhatsApp code"),
      h("form", { onsubmit: (e) => { e.preventDefault(); void go("/api/v1/auth/otp/verify", { phone: phone.value, code: code.value }); } },
        phone,
        h("button", { type: "button", testid: "otp-request", onclick: async () => {
          try { await api.call("POST", "/api/v1/auth/otp/request", { phone: phone.value }); err.textContent = "Code sent on WhatsApp."; }
          catch (e) { err.textContent = (e as Error).message; } } }, "Send code"),
        code, h("button", { type: "submit", testid: "otp-verify" }, "Log in"))),
    err));
}

// ---- socket -----------------------------------------------------------------------------------

function connect(): void {
  socket?.disconnect();
  socket = io({ auth: (cb) => cb({ token: api.accessToken }), transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });
  socket.on("connect", () => { banner(""); void resync(); });
  socket.on("disconnect", () => banner("Connection lost - reconnecting..."));
  socket.on("connect_error", async (err: Error & { data?: { code?: string } }) => {
    if (err.data?.code === "unauthorized" && !(await api.refresh())) return authView("Please log in again.");
    banner("Cannot reach the server - retrying...");
  });
  socket.on("message", (m: Message) => onMessage(m));
  socket.on("message:updated", (m: Message) => { roomMsgs(m.room_id).update(m); if (m.room_id === current) renderMessages(); });
  socket.on("typing", (e: { room_id: number; user: { id: number; display_name: string }; typing: boolean; ttl_ms: number }) => {
    if (e.user.id === api.user?.id) return;
    typingOf(e.room_id).set(e.user.id, e.user.display_name, e.typing, e.ttl_ms);
    if (e.room_id === current) renderTyping();
  });
  socket.on("presence", (p: { user_id: number; status: string; last_seen: string | null }) => {
    presence.set(p.user_id, p);
    document.querySelectorAll<HTMLElement>(`[data-presence="${p.user_id}"]`).forEach((el) => { el.className = `dot ${p.status}`; el.title = p.status === "online" ? "online" : `last seen ${time(p.last_seen)}`; });
  });
  socket.on("room:added", (r: Room) => { rooms.set(r.id, { ...rooms.get(r.id), ...r, joined: true }); renderRooms(); });
  socket.on("member:joined", () => void 0);
  socket.on("assistant:delta", (d: { room_id: number; reply_id: string; text: string }) => {
    const s = streams.get(d.reply_id) ?? { room_id: d.room_id, text: "" };
    s.text += d.text;
    streams.set(d.reply_id, s);
    if (d.room_id === current) renderMessages();
  });
  socket.on("conversation:updated", (c: Conversation) => {
    conversations = [c, ...conversations.filter((x) => x.room_id !== c.room_id)];
    if (view === "inbox") renderMain();
  });
  socket.on("wa:status", (s: { message_id: number; status: string }) => { waStatus.set(s.message_id, s.status); if (current) renderMessages(); });
}

function banner(text: string): void {
  const el = document.querySelector<HTMLElement>("[data-testid=connection-banner]");
  if (el) { el.textContent = text; el.hidden = !text; }
}

async function resync(): Promise<void> {
  const cursors: Record<string, number> = {};
  for (const [id, rm] of messages) if (rm.lastSeq() > 0) cursors[id] = rm.lastSeq();
  if (Object.keys(cursors).length) {
    const ack = await emit<{ rooms: Record<string, { messages: Message[]; resync: boolean }> }>("sync", { cursors });
    if (ack.ok) for (const [id, r] of Object.entries(ack.rooms)) {
      if (r.resync) { messages.delete(Number(id)); if (Number(id) === current) await openRoom(Number(id)); }
      else roomMsgs(Number(id)).add(r.messages);
    }
  } else if (current) await openRoom(current);
  // sends that never got an ack go again with the same client_id: the server dedupes
  for (const rm of messages.values()) for (const p of rm.pending.values()) void send(p.room_id, p.body, p.client_id);
  if (current) renderMessages();
}

function onMessage(m: Message): void {
  const rm = roomMsgs(m.room_id);
  const before = rm.lastSeq();
  const gap = rm.add([m]);
  if (m.meta?.reply_id) streams.delete(String(m.meta.reply_id));
  if (m.author_id !== null) typingOf(m.room_id).set(m.author_id, "", false, 0);
  const room = rooms.get(m.room_id);
  if (room) {
    room.last_seq = Math.max(room.last_seq, m.seq);
    if (m.room_id !== current && m.author_id !== api.user?.id) room.unread = (room.unread ?? 0) + 1;
  }
  if (gap) void emit<{ rooms: Record<string, { messages: Message[] }> }>("sync", { cursors: { [m.room_id]: before } })
    .then((ack) => { if (ack.ok) Object.values(ack.rooms).forEach((r) => rm.add(r.messages)); if (m.room_id === current) renderMessages(); });
  if (m.room_id === current) { renderMessages(); void emit("read", { room_id: m.room_id, seq: m.seq }); }
  renderRooms();
}

// ---- actions ----------------------------------------------------------------------------------

async function send(roomId: number, body: string, clientId = newClientId()): Promise<void> {
  const rm = roomMsgs(roomId);
  rm.queue({ client_id: clientId, room_id: roomId, body, created_at: new Date().toISOString() });
  if (roomId === current) renderMessages();
  const ack = await emit<{ message: Message }>("message:send", { room_id: roomId, body, client_id: clientId });
  if (ack.ok) rm.add([ack.message]);
  else if (ack.error.code !== "unavailable") rm.fail(clientId, ack.error.message);
  if (roomId === current) renderMessages();
}

async function openRoom(id: number): Promise<void> {
  current = id;
  view = "chat";
  const ack = await emit<{ room: Room; messages: Message[]; has_more: boolean; members: (User & { last_seen: string | null })[]; presence: Record<string, string> }>("room:join", { room_id: id });
  if (!ack.ok) return renderMain(ack.error.message);
  rooms.set(id, { ...rooms.get(id), ...ack.room, joined: true, unread: 0 });
  const rm = roomMsgs(id);
  rm.add(ack.messages);
  rm.hasMore = ack.has_more;
  for (const m of ack.members) presence.set(m.id, { status: ack.presence[m.id] ?? "offline", last_seen: m.last_seen });
  members.set(id, ack.members);
  if (ack.messages.length) void emit("read", { room_id: id, seq: ack.messages[ack.messages.length - 1].seq });
  renderRooms();
  renderMain();
}
const members = new Map<number, User[]>();

async function loadOlder(): Promise<void> {
  if (current === null) return;
  const rm = roomMsgs(current);
  const ack = await emit<{ messages: Message[]; has_more: boolean }>("history", { room_id: current, before_seq: rm.firstSeq() ?? undefined, limit: 50 });
  if (ack.ok) { rm.add(ack.messages); rm.hasMore = ack.has_more; renderMessages(false); }
}

async function loadRooms(): Promise<void> {
  const data = await api.call<{ rooms: Room[] }>("GET", "/api/v1/rooms");
  rooms.clear();
  for (const r of data.rooms) rooms.set(r.id, r);
  renderRooms();
}

// ---- rendering --------------------------------------------------------------------------------

function renderRooms(): void {
  const list = document.querySelector("[data-testid=room-list]");
  if (!list) return;
  clear(list);
  const sorted = [...rooms.values()].sort((a, b) => Number(b.joined) - Number(a.joined) || a.name.localeCompare(b.name));
  for (const r of sorted) {
    const label = r.kind === "direct" ? (r.peer?.name ?? r.name) : `${r.kind === "private" ? "🔒" : "#"} ${r.name}`;
    list.append(h("li", {},
      h("button", { testid: "room-item", "data-room": r.id, class: r.id === current ? "active" : "", onclick: () => void openRoom(r.id) },
        r.kind === "direct" && r.peer ? h("span", { class: `dot ${presence.get(r.peer.id)?.status ?? "offline"}`, "data-presence": r.peer.id }) : null,
        label, r.unread ? h("span", { class: "badge", testid: "unread" }, r.unread) : null,
        r.joined ? null : h("small", {}, " join"))));
  }
}

function renderTyping(): void {
  const el = document.querySelector("[data-testid=typing-indicator]");
  if (!el || current === null) return;
  const names = typingOf(current).names().filter(Boolean);
  el.textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing...` : "";
}

function messageItem(m: Message): HTMLElement {
  const mine = m.author_id === api.user?.id;
  const status = waStatus.get(m.id);
  return h("li", { testid: "message", "data-id": m.id, "data-seq": m.seq, class: `msg ${m.author_kind} ${mine ? "mine" : ""}` },
    h("div", { class: "meta" }, h("b", {}, m.author_name ?? m.author_kind), " ", time(m.created_at),
      m.edited_at ? " (edited)" : "", m.meta?.offline ? " · offline assistant" : "",
      status ? h("span", { class: `tick ${status}`, testid: "wa-status" }, status === "read" || status === "delivered" ? "✓✓" : status === "failed" ? "!" : "✓") : null),
    h("div", { class: "body", testid: "message-body" }, m.deleted_at ? h("i", {}, "message deleted") : m.body),
    mine && !m.deleted_at ? h("div", { class: "tools" },
      h("button", { testid: "edit", onclick: async () => {
        const body = prompt("Edit message", m.body);
        if (body && body !== m.body) await emit("message:edit", { id: m.id, body });
      } }, "Edit"),
      h("button", { testid: "delete", onclick: () => void emit("message:delete", { id: m.id }) }, "Delete")) : null);
}

function renderMessages(stick = true): void {
  const list = document.querySelector<HTMLElement>("[data-testid=message-list]");
  if (!list || current === null) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const rm = roomMsgs(current);
  clear(list);
  if (rm.hasMore) list.append(h("li", {}, h("button", { testid: "load-older", onclick: () => void loadOlder() }, "Load older messages")));
  for (const m of rm.sorted()) list.append(messageItem(m));
  for (const p of rm.pending.values()) if (p.room_id === current) {
    list.append(h("li", { testid: "pending", class: "msg mine pending" }, h("div", { class: "body" }, p.body),
      h("div", { class: "meta" }, p.failed ? `not sent: ${p.failed}` : "sending...")));
  }
  for (const [id, s] of streams) if (s.room_id === current) {
    list.append(h("li", { testid: "assistant-stream", "data-reply": id, class: "msg assistant streaming" }, h("div", { class: "body" }, s.text)));
  }
  if (stick && atBottom) list.scrollTop = list.scrollHeight;
  renderTyping();
}

function chatPane(room: Room): HTMLElement {
  const input = h("textarea", { testid: "composer-input", rows: 2, placeholder: `Message ${room.name}  (Enter to send, @assistant to ask)`, "aria-label": "Message" });
  const submit = () => { const body = input.value.trim(); if (body) { input.value = ""; void send(room.id, body); } };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); return; }
    if (Date.now() - lastTypingSent > 3000) { lastTypingSent = Date.now(); void emit("typing", { room_id: room.id, typing: true }); }
  });
  const list = h("ul", { class: "messages", testid: "message-list", "aria-live": "polite" });
  list.addEventListener("scroll", () => { if (list.scrollTop === 0 && roomMsgs(room.id).hasMore) void loadOlder(); });
  const who = members.get(room.id) ?? [];
  const conv = conversations.find((c) => c.room_id === room.id);
  return h("section", { class: "chat" },
    h("header", {}, h("h2", { testid: "room-title" }, room.name),
      h("span", { class: "people" }, ...who.map((u) => h("span", { class: "person" },
        h("span", { class: `dot ${presence.get(u.id)?.status ?? "offline"}`, "data-presence": u.id, testid: "presence-dot" }), u.display_name))),
      room.kind === "private" || room.kind === "public" ? h("button", { testid: "invite", onclick: async () => {
        const name = prompt("Invite who? (username)");
        if (!name) return;
        const found = await api.call<{ users: User[] }>("GET", `/api/v1/users?q=${encodeURIComponent(name)}`);
        const u = found.users.find((x) => x.username === name) ?? found.users[0];
        if (u) await api.call("POST", `/api/v1/rooms/${room.id}/members`, { user_id: u.id });
      } }, "Invite") : null,
      room.kind !== "direct" && room.kind !== "whatsapp" ? h("button", { testid: "leave", onclick: async () => { await emit("room:leave", { room_id: room.id }); current = null; await loadRooms(); renderMain(); } }, "Leave") : null,
      conv ? conversationControls(conv) : null),
    list, h("div", { class: "typing", testid: "typing-indicator", "aria-live": "polite" }),
    h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); submit(); } }, input, h("button", { type: "submit", testid: "send" }, "Send")));
}

function conversationControls(c: Conversation): HTMLElement {
  const act = (a: string, body?: unknown) => async () => {
    const r = await api.call<{ conversation: Conversation }>("POST", `/api/v1/wa/conversations/${c.room_id}/${a}`, body);
    conversations = [r.conversation, ...conversations.filter((x) => x.room_id !== c.room_id)];
    renderMain();
  };
  return h("span", { class: "wa-controls" },
    h("span", { testid: "wa-mode" }, c.mode === "ai" ? "AI answering" : `Human${c.assignee ? `: ${c.assignee.display_name}` : ""}`),
    c.window_open ? null : h("span", { class: "warn" }, " 24-hour window closed: only templates can be sent"),
    c.mode === "ai" ? h("button", { testid: "takeover", onclick: act("takeover") }, "Take over") : h("button", { testid: "handback", onclick: act("handback") }, "Hand back to AI"),
    c.status === "closed" ? h("button", { testid: "reopen", onclick: act("reopen") }, "Reopen") : h("button", { testid: "close", onclick: act("close") }, "Close"));
}

async function inboxPane(): Promise<HTMLElement> {
  conversations = (await api.call<{ conversations: Conversation[] }>("GET", "/api/v1/wa/conversations")).conversations;
  return h("section", { class: "inbox" }, h("h2", {}, "WhatsApp inbox"),
    h("ul", { testid: "inbox-list" }, ...conversations.map((c) => h("li", {},
      h("button", { testid: "inbox-item", "data-room": c.room_id, onclick: async () => { rooms.set(c.room_id, { id: c.room_id, slug: "", name: c.contact.name || `+${c.contact.wa_id}`, kind: "whatsapp", topic: "", last_seq: 0 }); await openRoom(c.room_id); } },
        h("b", {}, c.contact.name || `+${c.contact.wa_id}`), ` · ${c.status} · ${c.mode === "ai" ? "AI" : c.assignee?.display_name ?? "human"}`,
        c.unread ? h("span", { class: "badge" }, c.unread) : null,
        h("div", { class: "preview" }, c.last_message?.body ?? ""))))));
}

async function archivePane(): Promise<HTMLElement> {
  const cfg = await api.call<{ enabled: boolean; base_url: string }>("GET", "/api/v1/archive/config");
  if (!cfg.enabled) return h("section", {}, h("h2", {}, "Archive"), h("p", {}, "The archive is not configured on this server."));
  const f = { q: h("input", { placeholder: "text", testid: "archive-q" }), room: h("input", { placeholder: "room id", testid: "archive-room" }),
    user: h("input", { placeholder: "user id" }), from: h("input", { type: "date" }), to: h("input", { type: "date" }) };
  const out = h("ul", { testid: "archive-results" });
  let cursor: string | null = null;
  const get = async (path: string) => {
    const r = await fetch(cfg.base_url + path, { headers: { Authorization: `Bearer ${api.accessToken}` } });
    if (!r.ok) throw new ApiError(r.status, "error", (await r.json()).error?.message ?? r.statusText);
    return r;
  };
  const search = async (more = false) => {
    const p = new URLSearchParams();
    if (f.room.value) p.set("room_id", f.room.value);
    if (f.user.value) p.set("user_id", f.user.value);
    if (f.from.value) p.set("from", new Date(f.from.value).toISOString());
    if (f.to.value) p.set("to", new Date(f.to.value).toISOString());
    if (more && cursor) p.set("cursor", cursor);
    const path = f.q.value ? `/archive/v1/search?q=${encodeURIComponent(f.q.value)}&${p}` : f.room.value ? `/archive/v1/rooms/${f.room.value}/messages?${p}` : `/archive/v1/users/${f.user.value}/messages?${p}`;
    try {
      const data = await (await get(path)).json();
      if (!more) clear(out);
      cursor = data.next_cursor;
      for (const m of data.messages as Message[]) out.append(messageItem(m));
    } catch (e) { clear(out); out.append(h("li", { class: "error" }, (e as Error).message)); }
  };
  return h("section", { class: "archive" }, h("h2", {}, "Archive search"),
    h("form", { onsubmit: (e) => { e.preventDefault(); void search(); } }, f.q, f.room, f.user, f.from, f.to, h("button", { type: "submit", testid: "archive-search" }, "Search"),
      h("button", { type: "button", onclick: () => void search(true) }, "More"),
      h("button", { type: "button", onclick: async () => {
        const blob = await (await get(`/archive/v1/rooms/${f.room.value}/export`)).blob();
        const a = h("a", { href: URL.createObjectURL(blob), download: `room-${f.room.value}.jsonl` });
        a.click();
      } }, "Export room (JSON lines)")), out);
}

async function adminPane(): Promise<HTMLElement> {
  const users = (await api.call<{ users: User[] }>("GET", "/api/v1/admin/users")).users;
  const accounts = (await api.call<{ accounts: { id: number; display_phone: string; phone_number_id: string }[] }>("GET", "/api/v1/admin/wa/accounts")).accounts;
  const fields = ["phone_number_id", "display_phone", "access_token", "app_secret", "verify_token"].map((n) => h("input", { name: n, placeholder: n, type: n.includes("token") || n.includes("secret") ? "password" : "text" }));
  return h("section", { class: "admin" }, h("h2", {}, "Users"),
    h("table", {}, ...users.map((u) => h("tr", {}, h("td", {}, u.username), h("td", {}, u.kind),
      h("td", {}, (() => { const s = h("select", { "aria-label": `role of ${u.username}`, onchange: async (e) => { await api.call("PATCH", `/api/v1/admin/users/${u.id}`, { role: (e.target as HTMLSelectElement).value }); } },
        ...["user", "staff", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r))); return s; })())))),
    h("h2", {}, "WhatsApp numbers"),
    h("ul", {}, ...accounts.map((a) => h("li", {}, `${a.display_phone} (${a.phone_number_id}) `,
      h("button", { onclick: async () => { await api.call("DELETE", `/api/v1/admin/wa/accounts/${a.id}`); renderMain(); } }, "Remove")))),
    h("form", { onsubmit: async (e) => { e.preventDefault(); const body = Object.fromEntries(fields.map((i) => [i.name, i.value])); await api.call("POST", "/api/v1/admin/wa/accounts", body); renderMain(); } },
      ...fields, h("button", { type: "submit" }, "Add number")));
}

async function renderMain(error = ""): Promise<void> {
  const main = document.querySelector("[data-testid=main]");
  if (!main) return;
  clear(main);
  if (error) main.append(h("p", { class: "error", role: "alert" }, error));
  try {
    if (view === "inbox") main.append(await inboxPane());
    else if (view === "archive") main.append(await archivePane());
    else if (view === "admin") main.append(await adminPane());
    else if (current !== null && rooms.get(current)) { main.append(chatPane(rooms.get(current)!)); renderMessages(); }
    else main.append(h("p", { class: "empty" }, "Pick a room, or create one."));
  } catch (e) { main.append(h("p", { class: "error" }, (e as Error).message)); }
}

function shell(): void {
  clear(app);
  const roomName = h("input", { placeholder: "New room name", testid: "new-room-name", "aria-label": "New room name" });
  const priv = h("input", { type: "checkbox", testid: "new-room-private", "aria-label": "Private" });
  const people = h("input", { placeholder: "Find people", testid: "people-search", "aria-label": "Find people" });
  const found = h("ul", { testid: "people-results" });
  const nav = (v: typeof view) => () => { view = v; current = null; void renderMain(); };
  app.append(
    h("div", { class: "banner", testid: "connection-banner", hidden: true, role: "status" }),
    h("div", { class: "layout" },
      h("aside", {},
        h("header", {}, h("b", { testid: "me" }, api.user?.display_name ?? ""),
          h("button", { testid: "logout", onclick: async () => { await api.call("POST", "/api/v1/auth/logout", { refresh_token: api.refreshToken }).catch(() => 0); api.clear(); socket?.disconnect(); authView(); } }, "Log out")),
        isStaff() ? h("nav", {}, h("button", { testid: "nav-chat", onclick: nav("chat") }, "Chat"), h("button", { testid: "nav-inbox", onclick: nav("inbox") }, "Inbox"),
          h("button", { testid: "nav-archive", onclick: nav("archive") }, "Archive"), api.user?.role === "admin" ? h("button", { testid: "nav-admin", onclick: nav("admin") }, "Admin") : null) : null,
        h("ul", { class: "rooms", testid: "room-list" }),
        h("form", { onsubmit: async (e) => { e.preventDefault(); if (!roomName.value.trim()) return;
          const r = await api.call<{ room: Room }>("POST", "/api/v1/rooms", { name: roomName.value, kind: priv.checked ? "private" : "public" });
          roomName.value = ""; rooms.set(r.room.id, { ...r.room, joined: true }); await openRoom(r.room.id); } },
          roomName, h("label", {}, priv, " private"), h("button", { type: "submit", testid: "create-room" }, "Create")),
        h("form", { onsubmit: async (e) => { e.preventDefault(); clear(found);
          const r = await api.call<{ users: User[] }>("GET", `/api/v1/users?q=${encodeURIComponent(people.value)}`);
          for (const u of r.users.filter((x) => x.id !== api.user?.id)) found.append(h("li", {}, h("button", { testid: "start-dm", onclick: async () => {
            const d = await api.call<{ room: Room }>("POST", "/api/v1/dms", { user_id: u.id });
            rooms.set(d.room.id, { ...d.room, joined: true, peer: { id: u.id, name: u.display_name } }); await openRoom(d.room.id); } }, `Message ${u.display_name}`))); } },
          people, found)),
      h("main", { testid: "main" })));
}

async function start(): Promise<void> {
  api.user = (await api.call<{ user: User }>("GET", "/api/v1/users/me")).user;
  shell();
  await loadRooms();
  connect();
  void renderMain();
  setInterval(renderTyping, 1000);
}

(async () => {
  if (api.refreshToken && (await api.refresh())) {
    try { await start(); return; } catch { /* fall through to the login page */ }
  }
  authView();
})();
