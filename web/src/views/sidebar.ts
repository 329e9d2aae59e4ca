// The sidebar: who is signed in, the staff navigation, rooms and DMs with unread counts, public
// rooms to join, creating a room and starting a DM.
import { ApiError } from "../api";
import { fill, h, type Item, KeyedList, lockIcon, say } from "../dom";
import { roomLabel } from "../store/rooms";
import type { Room, User } from "../types";
import type { App } from "./app";
import { isDeskManager, isStaff } from "../roles";
import { avatar, setAvatar } from "./avatar";
import { SearchBox } from "./search";

export class Sidebar {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "rooms", testid: "room-list", "aria-label": "Rooms and direct messages" });
  private readonly keyed = new KeyedList(this.list);
  private readonly nav = h("nav", { class: "nav", "aria-label": "Sections" });
  private readonly navKeyed = new KeyedList(this.nav);
  private readonly found = h("ul", { class: "found", testid: "people-results", "aria-live": "polite" });
  private readonly status = h("p", { class: "error", role: "alert" });
  /** Asks for the notification permission on the user's click only, never on load. */
  private readonly notifyAsk = h("div", { class: "notify-ask", testid: "notify-ask", hidden: true });

  constructor(private readonly app: App) {
    const me = app.me;
    this.el = h("aside", { "aria-label": "Navigation" },
      h("header", {},
        h("a", { class: "who", href: "#/account", testid: "account-link", title: "Your account" },
          avatar(me.display_name, me.avatar_url),
          h("b", { testid: "me" }, me.display_name), me.role !== "user" ? h("small", { class: "role" }, me.role) : null),
        h("button", { type: "button", testid: "logout", onclick: () => void app.logout() }, "Log out")),
      new SearchBox(app).el,
      this.nav,
      this.notifyAsk,
      this.list,
      this.createForm(),
      this.peopleForm(),
      this.status);
  }

  renamed(name: string): void {
    const b = this.el.querySelector('[data-testid="me"]');
    if (b) b.textContent = name;
    this.pictured();
  }

  /** The header's picture after a rename or a picture change (app.me holds both). */
  pictured(): void {
    const el = this.el.querySelector<HTMLElement>(".who .avatar");
    if (el) setAvatar(el, this.app.me.display_name, this.app.me.avatar_url);
  }

  render(current: number | null, view: string): void {
    const me = this.app.me;
    // keyed by link, so a re-render (presence, a message arrived) leaves the links in place: a
    // link replaced between a click's press and release would lose the click
    const staff = isStaff(me), manager = isDeskManager(me);
    const links = [
      { id: "nav-chat", hash: "#/", label: "Chat", active: view === "home" || view === "room", shown: staff },
      { id: "nav-inbox", hash: "#/inbox", label: "Inbox", active: view === "inbox", shown: staff },
      { id: "nav-contacts", hash: "#/contacts", label: "Contacts", active: view === "contacts" || view === "contact", shown: staff },
      { id: "nav-labels", hash: "#/labels", label: "Labels", active: view === "labels", shown: staff },
      { id: "nav-archive", hash: "#/archive", label: "Archive", active: view === "archive", shown: staff },
      { id: "nav-reports", hash: "#/reports", label: "Reports", active: view === "reports", shown: manager },
      { id: "nav-campaigns", hash: "#/campaigns", label: "Campaigns", active: view === "campaigns", shown: manager },
      { id: "nav-admin", hash: "#/admin", label: "Admin", active: view === "admin", shown: me.role === "admin" },
    ];
    this.navKeyed.render(links.filter((l) => l.shown).map((l) => ({
      key: l.id, sig: String(l.active), make: () => this.navButton(l.id, l.hash, l.label, l.active),
    })));
    this.nav.hidden = !staff;
    this.renderNotifyAsk();
    const { rooms, direct, discover } = this.app.client.rooms.sections();
    // keyed, so a re-render (a message arrived) keeps the element, and the focus, of each item;
    // an item whose look changed is updated in place, so a click on it while it changes still lands
    this.keyed.render([
      ...group("rooms", "Rooms", rooms.length === 0 ? "No rooms yet" : null), ...rooms.map((r) => this.item(r, current)),
      ...group("direct", "Direct messages", direct.length === 0 ? "Nobody yet" : null), ...direct.map((r) => this.item(r, current)),
      ...(discover.length ? group("discover", "Public rooms to join", null) : []), ...discover.map((r) => this.item(r, current)),
    ]);
  }

  private renderNotifyAsk(): void {
    const state = this.app.notifier.permission();
    this.notifyAsk.hidden = state !== "default" || this.dismissed;
    if (state !== "default" || this.notifyAsk.childElementCount) return;
    fill(this.notifyAsk, h("span", {}, "Get a notification when you are mentioned?"), " ",
      h("button", { type: "button", testid: "notify-enable", onclick: async () => {
        await this.app.notifier.request();
        this.notifyAsk.hidden = true;
      } }, "Enable notifications"),
      h("button", { type: "button", class: "link", testid: "notify-dismiss", "aria-label": "Not now", onclick: () => { this.notifyAsk.hidden = true; this.dismissed = true; } }, "Not now"));
  }

  private dismissed = false;

  private navButton(testid: string, hash: string, label: string, active: boolean): HTMLElement {
    return h("a", { href: hash, testid, class: active ? "active" : "", "aria-current": active ? "page" : undefined }, label);
  }

  private item(r: Room, current: number | null): Item {
    const label = roomLabel(r);
    const unread = r.joined ? r.unread ?? 0 : 0;
    const presence = this.app.client.presence;
    const status = r.kind === "direct" && r.peer ? presence.describe(r.peer.id) : "";
    const mentions = r.joined ? r.mentions ?? 0 : 0;
    const picture = r.kind === "direct" ? r.peer?.avatar_url ?? "" : "";
    return { key: `r${r.id}`, sig: [label, unread, mentions, r.notify, r.joined, r.id === current, r.kind, status, picture].join("|"), make: () => this.itemEl(r, label, unread, current), inPlace: true };
  }

  private itemEl(r: Room, label: string, unread: number, current: number | null): HTMLElement {
    const presence = this.app.client.presence;
    const dot = r.kind === "direct" && r.peer
      ? h("span", { class: `dot ${presence.get(r.peer.id).status}`, testid: "presence-dot", "data-user": r.peer.id, title: presence.describe(r.peer.id) })
      : h("span", { class: "sigil", "aria-hidden": "true" }, r.kind === "private" ? lockIcon() : "#");
    const mentions = r.joined ? r.mentions ?? 0 : 0;
    const muted = r.joined && r.notify === "none";
    return h("li", {},
      h("a", {
        href: `#/room/${r.id}`, testid: "room-item", "data-room": r.id, "data-kind": r.kind,
        class: `${r.id === current ? "active" : ""}${unread && !muted ? " has-unread" : ""}${muted ? " muted-room" : ""}`,
        "aria-current": r.id === current ? "page" : undefined,
        "aria-label": `${label}${mentions ? `, ${mentions} mention${mentions === 1 ? "" : "s"}` : ""}${unread ? `, ${unread} unread` : ""}${muted ? ", muted" : ""}${r.joined ? "" : ", not joined"}`,
      }, dot, r.kind === "direct" && r.peer ? avatar(label, r.peer.avatar_url, "small") : null, h("span", { class: "name" }, label),
      mentions ? h("span", { class: "badge mention-badge", testid: "mentions", title: "Unread mentions" }, `@${mentions > 99 ? "99+" : mentions}`) : null,
      unread ? h("span", { class: "badge", testid: "unread" }, unread > 99 ? "99+" : unread) : null,
      r.joined ? null : h("small", { class: "join" }, "join")));
  }

  private createForm(): HTMLElement {
    const name = h("input", { testid: "new-room-name", name: "room", maxlength: 80, placeholder: "e.g. lobby" });
    const priv = h("input", { type: "checkbox", testid: "new-room-private" });
    return h("form", { class: "create", "aria-label": "Create a room", onsubmit: async (e) => {
      e.preventDefault();
      const value = name.value.trim();
      if (!value) return name.focus();
      try {
        const r = await this.app.api.call<{ room: Room }>("POST", "/api/v1/rooms", { name: value, kind: priv.checked ? "private" : "public" });
        name.value = "";
        priv.checked = false;
        this.app.client.rooms.upsert({ ...r.room, joined: true, unread: 0 });
        this.app.go(`#/room/${r.room.id}`);
      } catch (err) {
        say(this.status, (err as Error).message);
      }
    } },
      h("label", { class: "field" }, h("span", {}, "New room"), name),
      h("div", { class: "row" }, h("label", { class: "check" }, priv, " private"), h("button", { type: "submit", testid: "create-room" }, "Create")));
  }

  private peopleForm(): HTMLElement {
    const q = h("input", { testid: "people-search", name: "q", type: "search", placeholder: "name", autocomplete: "off" });
    const search = async () => {
      const r = await this.app.api.call<{ users: User[] }>("GET", `/api/v1/users?q=${encodeURIComponent(q.value.trim())}`);
      const others = r.users.filter((u) => u.id !== this.app.me.id);
      fill(this.found, ...others.map((u) => h("li", {},
        h("button", { type: "button", testid: "start-dm", "data-user": u.id, onclick: () => void this.openDm(u) },
          `Message ${u.display_name}`, h("small", {}, u.kind === "assistant" ? " · assistant" : ` @${u.username}`)))),
      others.length ? null : h("li", { class: "muted" }, "Nobody found"));
    };
    return h("form", { class: "people-search", "aria-label": "Start a direct message", onsubmit: (e) => { e.preventDefault(); void search().catch((err: Error) => say(this.status, err.message)); } },
      h("label", { class: "field" }, h("span", {}, "Message someone"), q),
      h("div", { class: "row" },
        h("button", { type: "submit", testid: "people-submit" }, "Find"),
        h("button", { type: "button", testid: "dm-assistant", onclick: () => void this.openAssistant() }, "Ask the assistant")),
      this.found);
  }

  async openDm(u: User): Promise<void> {
    try {
      const r = await this.app.api.call<{ room: Room }>("POST", "/api/v1/dms", { user_id: u.id });
      this.app.client.rooms.upsert({ ...r.room, joined: true, peer: { id: u.id, name: u.display_name } });
      fill(this.found);
      this.app.go(`#/room/${r.room.id}`);
    } catch (err) {
      say(this.status, err instanceof ApiError ? err.message : String(err));
    }
  }

  private async openAssistant(): Promise<void> {
    const r = await this.app.api.call<{ users: User[] }>("GET", "/api/v1/users?q=assistant").catch(() => ({ users: [] as User[] }));
    const bot = r.users.find((u) => u.kind === "assistant");
    if (bot) await this.openDm(bot);
    else say(this.status, "The assistant is not available.");
  }
}

export { initials } from "./avatar";

function group(key: string, title: string, empty: string | null): Item[] {
  const out: Item[] = [{ key: `g${key}`, sig: title, make: () => h("li", { class: "group", role: "presentation" }, title) }];
  if (empty) out.push({ key: `e${key}`, sig: empty, make: () => h("li", { class: "muted", role: "presentation" }, empty) });
  return out;
}
