// The signed-in app: the shell (banner, sidebar, main pane), routing by location hash
// (#/room/12, #/inbox, #/contacts, #/contacts/5, #/labels, #/archive, #/admin) and the wiring of socket events into ChatClient.
import type { Api } from "../api";
import { ChatClient, type Change } from "../client";
import { bannerText, Connection, type ConnState } from "../connection";
import { fill, h } from "../dom";
import { isDeskManager, isStaff } from "../roles";
import { Notifier, shouldNotify, titleWithCount } from "../notifications";
import { mentionsUser, roomLabel } from "../store/rooms";
import { fetchStaff } from "../store/staff";
import type { CampaignProgress, Contact, Conversation, DeltaEvent, Label, MemberEvent, MentionEvent, Message, Note, PresenceEvent, Queue, ReadUpdate, Room, RoomGoneEvent, TypingEvent, User, WaSessionEvent, WaStatusEvent } from "../types";
import { DEFAULT_MAX_MESSAGE_CHARS, fetchMaxMessageChars } from "../store/limits";
import { accountPane } from "./account";
import { adminPane } from "./admin";
import { campaignsPane } from "./campaigns";
import { archivePane } from "./archive";
import { ChatView } from "./chat";
import { ContactPage, ContactsView } from "./contacts";
import { InboxView } from "./inbox";
import { LabelsView } from "./labels";
import type { QueueEvent } from "./queues";
import { reportsPane } from "./reports";
import { Sidebar } from "./sidebar";

export type Route = { view: "home" } | { view: "room"; roomId: number } | { view: "inbox" } | { view: "archive" } | { view: "admin" } | { view: "account" } | { view: "reports" } | { view: "campaigns" }
  | { view: "contacts" } | { view: "contact"; contactId: number } | { view: "labels" };

export function parseRoute(hash: string): Route {
  const m = /^#\/room\/(\d+)$/.exec(hash);
  if (m) return { view: "room", roomId: Number(m[1]) };
  const c = /^#\/contacts\/(\d+)$/.exec(hash);
  if (c) return { view: "contact", contactId: Number(c[1]) };
  if (hash === "#/contacts") return { view: "contacts" };
  if (hash === "#/labels") return { view: "labels" };
  if (hash === "#/inbox") return { view: "inbox" };
  if (hash === "#/archive") return { view: "archive" };
  if (hash === "#/admin") return { view: "admin" };
  if (hash === "#/reports") return { view: "reports" };
  if (hash === "#/campaigns") return { view: "campaigns" };
  if (hash === "#/account") return { view: "account" };
  return { view: "home" };
}

/** What every pane gets. */
export interface AppContext {
  api: Api;
  client: ChatClient;
  conn: Connection;
  me: User;
  go: (hash: string) => void;
  /** Shows a short notice in the banner area (errors of actions). */
  notice: (text: string) => void;
}

interface Pane {
  el: HTMLElement;
  update?: (c: Change) => void;
  destroy?: () => void;
}

export class App implements AppContext {
  readonly client: ChatClient;
  readonly conn: Connection;
  readonly me: User;
  /** The server's MAX_MESSAGE_CHARS (GET /api/v1/config); the default until it answers. */
  maxMessageChars = DEFAULT_MAX_MESSAGE_CHARS;
  private route: Route = { view: "home" };
  private pane: Pane | null = null;
  private state: ConnState = { status: "connecting" };
  private readonly banner = h("div", { class: "banner", testid: "connection-banner", role: "status", hidden: true });
  private readonly noticeEl = h("div", { class: "notice", testid: "notice", role: "alert", hidden: true });
  private readonly main = h("main", { testid: "main", id: "main" });
  private readonly layout = h("div", { class: "layout" });
  private readonly sidebar: Sidebar;
  private ticker: ReturnType<typeof setInterval> | null = null;
  readonly notifier = new Notifier();
  /** The admin page's session list, while it is open (wa:session). */
  readonly waSessionListeners = new Set<(e: WaSessionEvent) => void>();
  /** The campaigns page listens to `campaign:progress` while it is open. */
  readonly campaignListeners = new Set<(e: CampaignProgress) => void>();
  readonly queueListeners = new Set<(e: QueueEvent) => void>();
  private noticeTimer: ReturnType<typeof setTimeout> | null = null;
  private staff: Promise<User[]> | null = null;
  private offRefreshed: (() => void) | null = null;
  private readonly onHash = () => this.navigate();
  private readonly onVisibility = () => {
    if (this.route.view === "room" && document.visibilityState === "visible") void this.client.markRead(this.route.roomId);
  };

  constructor(readonly api: Api, private readonly root: HTMLElement, private readonly onLogout: (reason: string) => void) {
    this.me = api.user!;
    this.conn = new Connection({
      token: () => api.freshToken(),
      refresh: () => api.refresh(),
      hasSession: () => api.refreshToken !== null,
      onState: (s) => this.setState(s),
      onConnect: () => {
        this.pane?.update?.({ kind: "connected" });
        void this.client.resume().catch((e: Error) => this.notice(`Could not catch up: ${e.message}`));
      },
      onSessionEnded: () => this.onLogout("Your session has ended. Please log in again."),
      handlers: {
        message: (m: Message) => this.client.onMessage(m),
        "message:updated": (m: Message) => this.client.onMessageUpdated(m),
        "read:updated": (e: ReadUpdate) => this.client.onReadUpdated(e),
        typing: (e: TypingEvent) => this.client.onTyping(e),
        presence: (e: PresenceEvent) => this.client.onPresence(e),
        "assistant:delta": (d: DeltaEvent) => this.client.onDelta(d),
        "room:added": (r: Room) => this.client.onRoomAdded(r),
        "room:updated": (r: Room) => this.client.onRoomUpdated(r),
        "room:deleted": (e: RoomGoneEvent) => this.client.onRoomGone(e.room_id),
        "member:removed": (e: RoomGoneEvent) => this.client.onRoomGone(e.room_id),
        "member:joined": (e: MemberEvent) => this.client.onMember(e, true),
        "member:left": (e: MemberEvent) => this.client.onMember(e, false),
        "conversation:updated": (c: Conversation) => this.client.onConversation(c),
        "conversation:hidden": (e: RoomGoneEvent) => this.client.onConversationHidden(e.room_id),
        "wa:status": (s: WaStatusEvent) => this.client.onWaStatus(s),
        "note:added": (n: Note) => this.client.onNote(n),
        "contact:updated": (c: Contact) => this.client.onContact(c),
        "label:updated": (l: Label) => this.client.onLabel(l),
        "label:deleted": (e: { id: number }) => this.client.onLabelDeleted(e.id),
        "wa:session": (e: WaSessionEvent) => { for (const fn of this.waSessionListeners) fn(e); },
        mention: (e: MentionEvent) => this.client.onMention(e),
        "campaign:progress": (e: CampaignProgress) => { for (const f of this.campaignListeners) f(e); },
        "queue:updated": (queue: Queue) => { for (const f of [...this.queueListeners]) f({ queue }); },
        "queue:deleted": (e: { id: number }) => { for (const f of [...this.queueListeners]) f({ deleted: e.id }); },
      },
    });
    this.client = new ChatClient({
      me: () => this.me,
      emit: (event, data, timeoutMs) => this.conn.emit(event, data, timeoutMs),
      connected: () => this.conn.connected,
      isVisible: (roomId) => this.route.view === "room" && this.route.roomId === roomId && document.visibilityState === "visible",
      call: (method, path, body) => api.call(method, path, body),
    });
    this.sidebar = new Sidebar(this);
  }

  start(): void {
    this.layout.append(this.sidebar.el, this.main);
    fill(this.root, h("a", { class: "skip", href: "#main" }, "Skip to the conversation"), this.banner, this.noticeEl, this.layout);
    this.client.subscribe((c) => this.onChange(c));
    window.addEventListener("hashchange", this.onHash);
    document.addEventListener("visibilitychange", this.onVisibility);
    // re-renders what depends on the clock: typing expiry, "last seen", the reconnect countdown
    this.ticker = setInterval(() => this.tick(), 1000);
    void this.client.refreshRooms().catch((e: Error) => this.notice(e.message));
    void fetchMaxMessageChars((method, path) => this.api.call(method, path)).then((n) => { this.maxMessageChars = n; });
    this.offRefreshed = this.api.onRefreshed(() => void this.conn.renew()); // the socket keeps up
    this.conn.start();
    this.navigate();
  }

  stop(): void {
    this.offRefreshed?.();
    this.offRefreshed = null;
    this.conn.stop();
    this.pane?.destroy?.();
    this.pane = null;
    if (this.ticker) clearInterval(this.ticker);
    window.removeEventListener("hashchange", this.onHash);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  async logout(): Promise<void> {
    this.stop();
    await this.api.logout().catch(() => undefined);
    this.onLogout("You are logged out.");
  }

  go(hash: string): void {
    if (location.hash === hash) this.navigate();
    else location.hash = hash;
  }

  /** The user's own record changed (a new display name). */
  renamed(u: User): void {
    Object.assign(this.me, { display_name: u.display_name });
    this.sidebar.renamed(u.display_name);
  }

  /** The user's picture changed (account page): the header shows the new one. */
  pictured(u: User): void {
    Object.assign(this.me, { avatar_url: u.avatar_url ?? null });
    this.sidebar.pictured();
  }

  notice(text: string): void {
    this.noticeEl.textContent = text;
    this.noticeEl.hidden = !text;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    if (text) this.noticeTimer = setTimeout(() => this.notice(""), 6000);
  }

  /** Staff and admins, for assigning conversations (fetched once per session). */
  staffList(): Promise<User[]> {
    this.staff ??= fetchStaff((path) => this.api.call<{ users: User[] }>("GET", path));
    this.staff.catch(() => { this.staff = null; });
    return this.staff;
  }

  get currentRoom(): number | null {
    return this.route.view === "room" ? this.route.roomId : null;
  }

  private navigate(): void {
    const route = parseRoute(location.hash);
    const staffOnly = route.view === "inbox" || route.view === "archive" || route.view === "contacts" || route.view === "contact" || route.view === "labels";
    if ((staffOnly && !isStaff(this.me)) || (route.view === "admin" && this.me.role !== "admin")
      || ((route.view === "reports" || route.view === "campaigns") && !isDeskManager(this.me))) return this.go("#/");
    this.route = route;
    this.pane?.destroy?.();
    this.pane = this.makePane(route);
    // on a phone the sidebar is hidden while a pane is open: the pages without their own back link get one
    const back = route.view === "inbox" || route.view === "archive" || route.view === "admin" || route.view === "account" || route.view === "campaigns"
      || route.view === "contacts" || route.view === "labels"
      ? h("a", { href: "#/", class: "pane-back", testid: "pane-back" }, "‹ Rooms") : null;
    fill(this.main, back, this.pane.el);
    this.layout.classList.toggle("show-main", route.view !== "home");
    this.sidebar.render(this.currentRoom, route.view);
  }

  private makePane(route: Route): Pane {
    switch (route.view) {
      case "room": {
        const view = new ChatView(this, route.roomId);
        return { el: view.el, update: (c) => view.update(c), destroy: () => view.destroy() };
      }
      case "inbox": {
        const view = new InboxView(this);
        return { el: view.el, update: (c) => view.update(c) };
      }
      case "contacts": {
        const view = new ContactsView(this);
        return { el: view.el, update: (c) => view.update(c) };
      }
      case "contact": {
        const view = new ContactPage(this, route.contactId);
        return { el: view.el, update: (c) => view.update(c) };
      }
      case "labels": {
        const view = new LabelsView(this);
        return { el: view.el, update: (c) => view.update(c) };
      }
      case "archive":
        return { el: archivePane(this) };
      case "admin":
        return { el: adminPane(this) };
      case "reports":
        return { el: reportsPane(this) };
      case "campaigns": {
        const view = campaignsPane(this);
        return { el: view.el, destroy: view.destroy };
      }
      case "account":
        return { el: accountPane(this) };
      default:
        return { el: h("section", { class: "empty" }, h("h2", {}, `Hello, ${this.me.display_name}`), h("p", {}, "Pick a room on the left, create one, or message someone.")) };
    }
  }

  private onChange(c: Change): void {
    if (c.kind === "gone" && this.currentRoom === c.roomId) {
      this.notice("This room was deleted, or you were removed from it.");
      return this.go("#/");
    }
    if (c.kind === "rooms" || c.kind === "presence") this.sidebar.render(this.currentRoom, this.route.view);
    this.pane?.update?.(c);
    if (c.kind === "rooms") document.title = titleWithCount(this.client.rooms.attention());
    if (c.kind === "incoming" || c.kind === "mention") this.alert(c);
  }

  /** A desktop notification and a sound, when the room's setting asks for one and the user is not looking. */
  private alert(c: Extract<Change, { kind: "incoming" | "mention" }>): void {
    const roomId = c.kind === "incoming" ? c.message.room_id : c.roomId;
    const message = c.kind === "incoming" ? c.message : this.client.findMessage(roomId, c.messageId) ?? null;
    const room = this.client.rooms.get(roomId);
    // a mention in a message comes twice (the message, then `mention`): the mention decides
    const mentioned = c.kind === "mention" || (message !== null && mentionsUser(message, this.me.id));
    if (c.kind === "incoming" && mentioned) return;
    if (!shouldNotify({ room, message, meId: this.me.id, mention: mentioned, openRoomId: this.currentRoom, hidden: document.visibilityState === "hidden" })) return;
    const where = room ? roomLabel(room) : "a room";
    const who = message?.author_name ?? "Someone";
    const title = mentioned ? `${who} mentioned you in ${where}` : `${who} in ${where}`;
    const body = message ? message.body || "sent a file" : "";
    this.notifier.show(c.kind === "incoming" ? c.message.id : c.messageId, title, body, () => this.go(`#/room/${roomId}`));
  }

  private setState(s: ConnState): void {
    this.state = s;
    this.renderBanner();
  }

  private renderBanner(): void {
    const text = bannerText(this.state);
    this.banner.hidden = !text;
    this.banner.dataset.state = this.state.status;
    if (!text) return this.banner.replaceChildren();
    fill(this.banner, h("span", {}, text), this.state.status === "retrying" || this.state.status === "offline"
      ? h("button", { type: "button", testid: "reconnect", onclick: () => this.conn.retryNow() }, "Retry now") : null);
  }

  private tick(): void {
    if (this.state.status === "retrying" && this.state.at !== null) this.renderBanner();
    if (this.route.view === "room") this.pane?.update?.({ kind: "typing", roomId: this.route.roomId });
  }
}
