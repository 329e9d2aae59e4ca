// One room on screen: header (title, presence, invite, leave, WhatsApp controls), the message
// list with infinite scroll upwards, who is typing, and the composer.
import type { Change } from "../client";
import { fill, h, type Item, KeyedList } from "../dom";
import type { PendingSend, RoomMessages } from "../store/messages";
import { DEFAULT_MAX_MESSAGE_CHARS, lengthNote } from "../store/limits";
import { roomTitle } from "../store/rooms";
import { TypingSender, typingText } from "../store/typing";
import { attachmentsOf } from "../store/messages";
import type { Attachment, CannedReply, Conversation, Message, NotifyLevel, Queue, Room, User } from "../types";
import { startUpload } from "../uploads";
import type { App } from "./app";
import { safeUrl, showViewer } from "./attachments";
import { conversationBar, conversationBarSig } from "./conversation";
import { ContactPanel } from "./contact";
import { NotesPanel } from "./notes";
import { TimelinePanel } from "./timeline";
import { TransferPanel } from "./transfer";
import { AssistPanel, type AssistDraft } from "./assist";
import { CannedPicker } from "./canned";
import { cannedListPath } from "../store/canned";
import { FilePicker } from "./files";
import { MentionPicker } from "./mentions";
import { RoomSettings } from "./roomsettings";
import { authorName, type ItemContext, messageItem, messageSig, pendingItem, quoteText, streamItem } from "./messages";
import { avatar } from "./avatar";
import { reactButton, type ReactionContext } from "./reactions";
import { seenText } from "../store/receipts";

const LONG_PLACEHOLDER = "Write a message — Enter sends, Shift+Enter adds a line, @assistant asks the assistant";
const SHORT_PLACEHOLDER = "Message";
const PHONE = "(max-width: 720px)";
const TOUCH = "(hover: none)";
const NEAR_TOP_PX = 150;
const NEAR_BOTTOM_PX = 60;

export class ChatView {
  readonly el: HTMLElement;
  private readonly title = h("h2", { testid: "room-title", id: "room-title" });
  private readonly subtitle = h("p", { class: "subtitle", testid: "room-subtitle" });
  private readonly people = h("ul", { class: "people", "aria-label": "Members" });
  private readonly actions = h("div", { class: "actions" });
  private readonly actionsKeyed = new KeyedList(this.actions);
  private readonly convo = h("div", { class: "convo" });
  private readonly convoKeyed = new KeyedList(this.convo);
  private readonly invitePanel = h("div", { class: "invite-panel", hidden: true });
  private readonly list = h("ul", { class: "messages", testid: "message-list", role: "log", "aria-labelledby": "room-title", tabindex: 0 });
  private readonly typingEl = h("div", { class: "typing", testid: "typing-indicator", "aria-live": "polite" });
  private readonly replyBar = h("div", { class: "reply-bar", testid: "reply-bar", hidden: true });
  // no maxlength: it would cut a pasted text silently; the counter says what is too long instead
  private readonly input = h("textarea", { testid: "composer-input", rows: 2, "aria-label": "Message", "aria-describedby": "composer-count", placeholder: LONG_PLACEHOLDER });
  private readonly counter = h("p", { class: "counter", testid: "composer-count", id: "composer-count", "aria-live": "polite", hidden: true });
  private readonly archivedNote = h("p", { class: "archived-note", testid: "archived-note", role: "status", hidden: true }, "This room is archived: it is read-only.");
  private readonly settingsPanel = h("div", { class: "settings-panel", testid: "room-settings", hidden: true });
  private readonly composer: HTMLFormElement;
  private readonly sendBtn = h("button", { type: "submit", class: "primary", testid: "send", disabled: true }, "Send");
  private readonly files: FilePicker;
  private readonly picker: MentionPicker;
  private readonly canned: CannedPicker;
  private readonly keyed = new KeyedList(this.list);
  private readonly sender = new TypingSender();
  private editingId: number | null = null;
  private confirmDeleteId: number | null = null;
  /** The message whose reaction picker is open. */
  private pickerFor: number | null = null;
  private replyTo: Message | null = null;
  private loadingOlder = false;
  private prepending = false;
  private toBottom = true;
  private opened = false;
  private error = "";
  private conversation: Conversation | null = null;
  private notes: NotesPanel | null = null;
  private timeline: TimelinePanel | null = null;
  private assist: AssistPanel | null = null;
  private contactPanel: ContactPanel | null = null;
  private transfer: TransferPanel | null = null;

  constructor(private readonly app: App, private readonly roomId: number) {
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < NEAR_TOP_PX) void this.older();
    });
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("blur", () => { this.stopTyping(); this.picker.close(); this.canned.close(); });
    this.input.addEventListener("click", () => this.picker.update());
    this.picker = new MentionPicker(this.input, () => this.mentionSource(), () => this.onInput());
    this.canned = new CannedPicker(this.input, {
      enabled: () => this.app.client.rooms.get(this.roomId)?.kind === "whatsapp",
      list: async (prefix) => (await app.api.call<{ canned_replies: CannedReply[] }>("GET", cannedListPath(prefix))).canned_replies,
      render: async (id) => (await app.api.call<{ text: string }>("POST", `/api/v1/canned-replies/${id}/render`, { conversation_id: roomId })).text,
      onError: (message) => app.notice(message),
    }, () => this.onInput());
    this.files = new FilePicker(
      (file, onProgress) => startUpload(file, { token: () => app.api.freshToken(), refresh: () => app.api.refresh() }, { onProgress }),
      () => this.updateSend());
    this.files.acceptPaste(this.input);
    this.fitPlaceholder();
    this.list.addEventListener("click", (e) => this.onTap(e));
    this.composer = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.files.button, this.files.input, this.input, this.sendBtn);
    this.el = h("section", { class: "chat", "aria-labelledby": "room-title" },
      h("header", {},
        h("div", { class: "title" }, h("a", { href: "#/", class: "back", testid: "back", "aria-label": "Back to the rooms" }, "‹"),
          h("div", {}, this.title, this.subtitle)),
        this.actions),
      this.people, this.convo, this.invitePanel, this.settingsPanel, this.list, this.typingEl, this.replyBar, this.files.el,
      this.picker.el, this.canned.el, this.counter, this.archivedNote, this.composer);
    this.files.acceptDrops(this.el);
    this.renderHeader();
    this.renderMessages();
    void this.open();
  }

  update(c: Change): void {
    if (c.kind === "connected" && (!this.opened || this.error)) void this.open();
    else if (c.kind === "messages" && c.roomId === this.roomId) this.renderMessages(c.stick);
    else if (c.kind === "typing" && c.roomId === this.roomId) this.renderTyping();
    else if (c.kind === "members" && c.roomId === this.roomId) {
      this.renderHeader();
      this.picker.refresh();
    }
    else if (c.kind === "rooms" || c.kind === "presence") this.renderHeader();
    else if (c.kind === "notes" && c.roomId === this.roomId) this.notes?.render();
    else if (c.kind === "contact" && c.contactId === this.contactPanel?.contactId) this.contactPanel?.refresh();
    else if (c.kind === "labels") {
      this.contactPanel?.refresh();
      this.renderConversation(); // the bar's label chips and choices
    }
    else if (c.kind === "inbox") {
      const next = this.app.client.inbox.get(this.roomId);
      if (next && next !== this.conversation) void this.timeline?.reload();
      this.conversation = next ?? this.conversation;
      this.renderConversation();
    }
  }

  destroy(): void {
    this.stopTyping();
    this.files.destroy();
  }

  // --- loading ----------------------------------------------------------------------------------

  private async open(): Promise<void> {
    if (!this.app.conn.connected) return; // opened on the "connected" change
    const err = await this.app.client.openRoom(this.roomId);
    this.opened = true;
    this.error = err ? err.message : "";
    this.renderHeader();
    this.renderMessages(true);
    if (!err) this.input.focus({ preventScroll: true });
    const room = this.app.client.rooms.get(this.roomId);
    if (room?.kind === "whatsapp") {
      this.conversation = this.app.client.inbox.get(this.roomId) ?? null;
      if (!this.conversation) {
        const r = await this.app.api.call<{ conversation: Conversation }>("GET", `/api/v1/wa/conversations/${this.roomId}`).catch(() => null);
        if (r) this.app.client.onConversation(r.conversation);
      }
      this.renderConversation();
    }
  }

  private async older(): Promise<void> {
    const rm = this.app.client.messages(this.roomId);
    if (this.loadingOlder || !rm.loaded || !rm.hasMore) return;
    this.loadingOlder = true;
    this.prepending = true;
    this.renderMessages();
    try {
      await this.app.client.loadOlder(this.roomId);
    } finally {
      this.loadingOlder = false;
      this.renderMessages();
      this.prepending = false;
    }
  }

  // --- rendering --------------------------------------------------------------------------------

  private renderHeader(): void {
    const client = this.app.client;
    const room = client.rooms.get(this.roomId);
    this.title.textContent = room ? roomTitle(room, this.conversation) : this.opened ? "Room" : "Loading…";
    const members = client.members.get(this.roomId) ?? [];
    const peer = room?.kind === "direct" ? members.find((u) => u.id !== this.app.me.id) ?? (room.peer ? { id: room.peer.id } : null) : null;
    if (peer) {
      fill(this.subtitle, h("span", { class: `dot ${client.presence.get(peer.id).status}`, testid: "presence-dot", "data-user": peer.id }),
        h("span", { testid: "peer-status" }, client.presence.describe(peer.id)));
    } else {
      const count = room && room.kind !== "whatsapp" && room.members_count !== undefined ? `${room.members_count} member${room.members_count === 1 ? "" : "s"}` : null;
      fill(this.subtitle, room?.kind === "whatsapp" ? "WhatsApp conversation" : null, room?.topic || null, room?.topic && count ? " · " : null, count);
    }
    const shown = members.slice(0, 30);
    fill(this.people, ...shown.map((u) => this.person(u)), members.length > shown.length ? h("li", { class: "muted" }, `+${members.length - shown.length}`) : null);
    this.people.hidden = room?.kind === "direct" || members.length === 0;
    const canInvite = room && room.joined && (room.kind === "private" || room.kind === "public");
    const canLeave = room && room.joined && (room.kind === "private" || room.kind === "public");
    const archived = Boolean(room?.archived_at);
    this.archivedNote.hidden = !archived;
    this.composer.hidden = archived;
    const canManage = room && (room.kind === "private" || room.kind === "public")
      && (this.app.me.role === "admin" || members.some((u) => u.id === this.app.me.id && u.member_role === "owner"));
    // keyed, so presence and room changes (they re-render the header) leave the controls alone:
    // an open notification select stays open, a click under way on Invite or Leave lands
    const actions: Item[] = [];
    if (room && room.joined && room.kind !== "whatsapp") {
      actions.push({ key: "notify", sig: room.notify ?? "all", make: () => this.notifySelect(room) });
    }
    const settingsOpen = String(!this.settingsPanel.hidden), inviteOpen = String(!this.invitePanel.hidden);
    if (canManage) {
      actions.push({ key: "settings", sig: settingsOpen, make: () => h("button", { type: "button", testid: "room-settings-open",
        "aria-expanded": settingsOpen, onclick: () => this.toggleSettings() }, "Settings") });
    }
    if (canInvite && !archived) {
      actions.push({ key: "invite", sig: inviteOpen, make: () => h("button", { type: "button", testid: "invite",
        "aria-expanded": inviteOpen, onclick: () => this.toggleInvite() }, "Invite") });
    }
    if (canLeave) actions.push({ key: "leave", sig: "", make: () => h("button", { type: "button", testid: "leave", onclick: () => void this.leave() }, "Leave") });
    this.actionsKeyed.render(actions);
  }

  /** The room's notification setting (stored on the server for this user). */
  private notifySelect(room: Room): HTMLElement {
    const select = h("select", { testid: "notify-setting", "aria-label": "Notifications for this room" },
      ...([["all", "All messages"], ["mentions", "Mentions only"], ["none", "Mute"]] as const).map(([value, label]) =>
        h("option", { value, selected: (room.notify ?? "all") === value }, label)));
    select.addEventListener("change", () => void this.setNotify(select.value as NotifyLevel));
    return h("label", { class: "notify", title: "Notifications for this room" }, "🔔 ", select);
  }

  private async setNotify(level: NotifyLevel): Promise<void> {
    try {
      await this.app.client.setNotify(this.roomId, level);
    } catch (err) {
      this.app.notice(`Could not change the notifications: ${(err as Error).message}`);
      this.renderHeader();
    }
  }

  /** Who the composer's @-autocomplete offers: the members; @room and @here for owners and admins. */
  private mentionSource(): { members: readonly User[]; meId: number; broadcast: boolean } {
    const members = this.app.client.members.get(this.roomId) ?? [];
    const mine = members.find((u) => u.id === this.app.me.id);
    const broadcast = this.app.me.role === "admin" || mine?.member_role === "owner" || mine?.member_role === "admin";
    return { members, meId: this.app.me.id, broadcast };
  }

  private person(u: User & { last_seen?: string | null }): HTMLElement {
    const p = this.app.client.presence;
    const label = p.describe(u.id);
    return h("li", { class: "person", title: `${u.display_name}: ${label}` },
      h("span", { class: `dot ${p.get(u.id).status}`, testid: "presence-dot", "data-user": u.id, role: "img", "aria-label": label }),
      avatar(u.display_name, u.avatar_url, "small"), u.display_name, u.kind === "assistant" ? h("small", {}, " (assistant)") : null);
  }

  private renderConversation(): void {
    if (this.conversation && !this.notes) this.notes = new NotesPanel(this.app, this.roomId);
    if (this.conversation && !this.timeline) this.timeline = new TimelinePanel(this.app, this.roomId);
    if (this.conversation && !this.assist) this.assist = this.assistPanel();
    if (this.conversation && !this.contactPanel) this.contactPanel = new ContactPanel(this.app, this.conversation);
    if (this.conversation && !this.transfer) this.transfer = this.transferPanel();
    if (this.conversation) this.assist?.onConversation(this.conversation);
    if (this.conversation) this.transfer?.onConversation(this.conversation);
    const room = this.app.client.rooms.get(this.roomId);
    if (room) this.title.textContent = roomTitle(room, this.conversation);
    const c = this.conversation;
    const items: Item[] = c ? [{ key: "bar", sig: conversationBarSig(this.app, c), make: () => conversationBar(this.app, c) }] : [];
    // the panels render themselves: put in once and never moved, since a move takes the focus
    // from a box being typed in (each of the contact's messages updates the conversation)
    const panels = { transfer: this.transfer, contact: this.contactPanel, assist: this.assist, timeline: this.timeline, notes: this.notes };
    for (const [key, panel] of Object.entries(panels)) if (panel) items.push({ key, sig: "", make: () => panel.el });
    this.convoKeyed.render(items);
  }

  private transferPanel(): TransferPanel {
    return new TransferPanel({
      queues: async () => (await this.app.api.call<{ queues: Queue[] }>("GET", "/api/v1/queues?scope=all")).queues,
      transfer: async (body) => {
        const r = await this.app.api.call<{ conversation: Conversation }>("POST", `/api/v1/wa/conversations/${this.roomId}/transfer`, body);
        this.app.client.onConversation(r.conversation, true);
      },
      onError: (message) => this.app.notice(message),
    });
  }

  private assistPanel(): AssistPanel {
    return new AssistPanel({
      ask: async (kind) => (await this.app.api.call<{ draft: AssistDraft }>(
        "POST", `/api/v1/wa/conversations/${this.roomId}/assist/${kind}`)).draft,
      useSuggestion: (text) => {
        this.input.value = text;
        this.input.focus();
        this.onInput();
      },
      onError: (message) => this.app.notice(message),
    }, this.app.me.id);
  }

  private itemContext(): ItemContext {
    const client = this.app.client;
    const rm = client.messages(this.roomId);
    return {
      meId: this.app.me.id,
      meName: this.app.me.username,
      status: (id) => client.inbox.statuses.get(id),
      lookup: (id) => rm.get(id),
      editingId: this.editingId,
      confirmDeleteId: this.confirmDeleteId,
      onEdit: (m) => this.setEditing(m.id),
      onCancel: () => this.setEditing(null),
      onSaveEdit: (m, body) => void this.saveEdit(m, body),
      onDelete: (m) => { this.confirmDeleteId = m.id; this.editingId = null; this.renderMessages(); },
      onConfirmDelete: (m) => void this.remove(m),
      onRetry: (p: PendingSend) => void client.retry(this.roomId, p.client_id),
      onDiscard: (p: PendingSend) => client.discard(this.roomId, p.client_id),
      onMediaError: (m) => void client.refreshMedia(this.roomId, m.id),
      onMediaRetry: (m, a) => void this.retryMedia(m, a),
      onOpenImage: (m, a, opener) => this.openImage(m, a, opener),
      onFollowLink: (m, a, e) => this.followLink(m, a, e),
      reactions: this.reactionContext(),
    };
  }

  private reactionContext(): ReactionContext {
    const client = this.app.client;
    const meId = this.app.me.id;
    const names = new Map((client.members.get(this.roomId) ?? []).map((u) => [u.id, u.display_name]));
    const lastOwn = client.messages(this.roomId).lastOwn(meId);
    const direct = client.rooms.get(this.roomId)?.kind === "direct";
    return {
      meId,
      mine: client.myReactions,
      nameOf: (id) => names.get(id),
      pickerFor: this.pickerFor,
      onToggle: (m, emoji) => void this.react(m, emoji),
      onPicker: (m) => { this.pickerFor = m ? m.id : null; this.renderMessages(); },
      // "seen by" under the user's own last message only, in rooms with read receipts
      seen: (m) => m.id === lastOwn?.id
        ? seenText(client.receipts.seenBy(this.roomId, m.seq, meId).map((id) => names.get(id) ?? "someone"), direct)
        : "",
    };
  }

  private async react(m: Message, emoji: string): Promise<void> {
    const err = await this.app.client.react(this.roomId, m.id, emoji);
    if (err) this.app.notice(`No reaction: ${err.message}`);
  }

  private renderMessages(stick = false): void {
    const list = this.list;
    const fromBottom = list.scrollHeight - list.scrollTop;
    const nearBottom = fromBottom - list.clientHeight < NEAR_BOTTOM_PX;
    const client = this.app.client;
    const rm = client.messages(this.roomId);
    const ctx = this.itemContext();
    const items: Item[] = [this.historyItem(rm.loaded, rm.hasMore, rm.olderHeldBack)];
    let prev: Message | null = null;
    for (const m of rm.sorted()) {
      const cont = continues(prev, m);
      // in place: an edit being typed, a playing video or a click under way survives a reaction or a read
      items.push({ key: `m${m.id}`, sig: `${messageSig(m, ctx)}|${cont}`, make: () => this.withReply(messageItem(m, ctx, cont), m), inPlace: true });
      prev = m;
    }
    for (const p of rm.pending.values()) items.push({ key: `p${p.client_id}`, sig: `${p.state}|${p.error ?? ""}`, make: () => pendingItem(p, ctx) });
    for (const [id, s] of client.liveStreams(this.roomId)) items.push({ key: `s${id}`, sig: s.text, make: () => streamItem(id, s) });
    this.keyed.render(items);
    if (this.prepending) list.scrollTop = list.scrollHeight - fromBottom; // older messages went in above: stay put
    else if (this.toBottom || (stick && nearBottom)) list.scrollTop = list.scrollHeight;
    if (rm.loaded) this.toBottom = false;
    // a first page shorter than the screen cannot be scrolled: fetch more until it can
    if (rm.loaded && rm.hasMore && !this.loadingOlder && list.clientHeight > 0 && list.scrollHeight <= list.clientHeight) void this.older();
    this.renderTyping();
  }

  private historyItem(loaded: boolean, hasMore: boolean, heldBack: RoomMessages["olderHeldBack"]): Item {
    const state = !this.opened || !loaded ? (this.error ? "error" : "loading") : this.loadingOlder ? "older" : hasMore ? "more" : "start";
    const why = heldBack === "archive_pending" ? "Older messages are on their way to the archive; try again in a moment."
      : heldBack === "archive_unavailable" ? "The archive is not answering; try again later." : null;
    return {
      key: "history",
      sig: `${state}|${this.error}|${heldBack}`,
      make: () => h("li", { class: "history", testid: "history-status", "data-state": state },
        state === "error" ? h("span", { class: "error", role: "alert" }, this.error)
          : state === "loading" || state === "older" ? "Loading…"
            : state === "more" ? h("button", { type: "button", testid: "load-older", onclick: () => void this.older() }, why ? "Try again" : "Load older messages")
              : "This is the beginning of the conversation.",
        state === "more" && why ? h("span", { class: "muted", testid: "history-held-back", role: "status" }, " ", why) : null),
    };
  }

  /** Adds the Reply button to a message item (not for deleted or system messages). */
  private withReply(li: HTMLLIElement, m: Message): HTMLLIElement {
    if (m.deleted_at || m.author_kind === "system" || this.editingId === m.id) return li;
    const btn = h("button", { type: "button", testid: "reply", "aria-label": `Reply to ${authorName(m)}`, onclick: () => this.setReply(m) }, "Reply");
    const react = this.app.client.rooms.get(this.roomId)?.kind !== "whatsapp" ? reactButton(m, this.reactionContext()) : null;
    const tools = li.querySelector(".tools:not(.shown)");
    if (tools) tools.prepend(...[btn, react].filter((b) => b !== null));
    else li.append(h("div", { class: "tools" }, btn, react));
    return li;
  }

  private renderTyping(): void {
    const text = typingText(this.app.client.typingIn(this.roomId).names());
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
    if (this.sender.tick()) this.emitTyping(false);
  }

  // --- actions ----------------------------------------------------------------------------------

  private submit(): void {
    const body = this.input.value.trim();
    if (!body && !this.files.hasReady()) return;
    const note = lengthNote(body.length, this.maxChars);
    if (note.over) return this.app.notice(`Not sent: the message is ${note.text}.`);
    const replyTo = this.replyTo?.id ?? null;
    const attachments = this.files.take();
    this.input.value = "";
    this.setReply(null);
    this.stopTyping();
    this.updateSend();
    this.toBottom = true;
    void this.app.client.send(this.roomId, body, replyTo, attachments);
  }

  /** Send works with text or at least one finished upload. */
  private updateSend(): void {
    const note = lengthNote(this.input.value.trim().length, this.maxChars);
    this.counter.hidden = !note.show;
    this.counter.textContent = note.text;
    this.counter.classList.toggle("over", note.over);
    this.input.setAttribute("aria-invalid", String(note.over));
    this.sendBtn.disabled = note.over || (this.input.value.trim() === "" && !this.files.hasReady());
  }

  private get maxChars(): number {
    return this.app.maxMessageChars || DEFAULT_MAX_MESSAGE_CHARS;
  }

  /** The long placeholder does not fit a phone's composer: a short one there. */
  private fitPlaceholder(): void {
    const phone = typeof matchMedia === "function" && matchMedia(PHONE).matches;
    this.input.placeholder = phone ? SHORT_PLACEHOLDER : LONG_PLACEHOLDER;
    this.input.title = LONG_PLACEHOLDER;
  }

  /**
   * On touch screens a message's buttons (Reply, Edit, Delete) stay hidden until the message is
   * tapped, one message at a time; a tap on a button, link or media does its own thing.
   */
  private onTap(e: MouseEvent): void {
    if (typeof matchMedia !== "function" || !matchMedia(TOUCH).matches) return;
    const target = e.target as HTMLElement;
    if (target.closest("button, a, input, textarea, video, audio, img")) return;
    const li = target.closest<HTMLElement>(".msg");
    const wasOpen = li?.classList.contains("tools-open") ?? false;
    for (const open of this.list.querySelectorAll(".msg.tools-open")) open.classList.remove("tools-open");
    if (li && !wasOpen) li.classList.add("tools-open");
  }

  private toggleSettings(): void {
    if (!this.settingsPanel.hidden) {
      this.settingsPanel.hidden = true;
      this.renderHeader();
      return;
    }
    const room = this.app.client.rooms.get(this.roomId);
    if (!room) return;
    const settings = new RoomSettings(this.app, room, this.app.client.members.get(this.roomId) ?? [], () => this.toggleSettings());
    fill(this.settingsPanel, settings.el);
    this.settingsPanel.hidden = false;
    this.renderHeader();
    settings.focus();
  }

  /**
   * A download link whose URL may have expired (held for most of its hour): open the tab at once,
   * while the click still allows it, fetch fresh URLs, then send the tab there.
   */
  private followLink(m: Message, a: Attachment, e: MouseEvent): void {
    const client = this.app.client;
    if (!client.mediaStale(this.roomId, m.id)) return;
    e.preventDefault();
    const tab = window.open("", "_blank");
    if (tab) tab.opener = null;
    void client.refreshMedia(this.roomId, m.id, true).then(() => {
      const fresh = client.messages(this.roomId).get(m.id);
      const url = safeUrl(fresh && attachmentsOf(fresh).find((x) => x.id === a.id)?.url);
      if (url && tab) tab.location.href = url;
      else {
        tab?.close();
        this.app.notice(url ? "The link was renewed: choose Download again." : "The file is no longer available.");
      }
    });
  }

  /** The viewer; should the full image's URL have expired, the message is fetched again once. */
  private openImage(m: Message, a: Attachment, opener: HTMLElement): void {
    showViewer(a, opener, async () => {
      await this.app.client.refreshMedia(this.roomId, m.id, true);
      const fresh = this.app.client.messages(this.roomId).get(m.id);
      return (fresh && attachmentsOf(fresh).find((x) => x.id === a.id)) ?? null;
    });
  }

  private onKey(e: KeyboardEvent): void {
    if (e.isComposing) return;
    if (this.canned.handleKey(e) || this.picker.handleKey(e)) return;
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      this.submit();
    } else if (e.key === "ArrowUp" && this.input.value === "") {
      const last = this.app.client.messages(this.roomId).lastOwn(this.app.me.id);
      if (last) {
        e.preventDefault();
        this.setEditing(last.id);
      }
    } else if (e.key === "Escape" && this.replyTo) {
      this.setReply(null);
    }
  }

  private onInput(): void {
    this.picker.update();
    void this.canned.update();
    this.updateSend();
    if (this.input.value.trim() === "") this.stopTyping();
    else if (this.sender.input()) this.emitTyping(true);
  }

  private stopTyping(): void {
    if (this.sender.stop()) this.emitTyping(false);
  }

  private emitTyping(typing: boolean): void {
    this.app.conn.volatile("typing", { room_id: this.roomId, typing });
  }

  private setEditing(id: number | null): void {
    this.editingId = id;
    this.confirmDeleteId = null;
    this.renderMessages();
    if (id === null) this.input.focus({ preventScroll: true });
  }

  private setReply(m: Message | null): void {
    this.replyTo = m;
    this.replyBar.hidden = !m;
    if (!m) return this.replyBar.replaceChildren();
    fill(this.replyBar, h("span", {}, "Replying to ", h("b", {}, authorName(m)), ": ", quoteText(m, 80)),
      h("button", { type: "button", testid: "reply-cancel", "aria-label": "Cancel the reply", onclick: () => this.setReply(null) }, "×"));
    this.input.focus();
  }

  private async saveEdit(m: Message, body: string): Promise<void> {
    const err = await this.app.client.edit(this.roomId, m.id, body);
    if (err) this.app.notice(`Not saved: ${err.message}`);
    this.setEditing(null);
  }

  /** Unavailable media: a WhatsApp contact's file is fetched again by the server (staff); other
   *  files come back with fresh URLs from the history page around the message. */
  private async retryMedia(m: Message, a: Attachment): Promise<void> {
    const client = this.app.client;
    if (client.rooms.get(this.roomId)?.kind !== "whatsapp") return void client.refreshMedia(this.roomId, m.id, true);
    try {
      await client.retryWhatsAppMedia(this.roomId, m.id, a.id);
    } catch (err) {
      this.app.notice(`Could not fetch the file again: ${(err as Error).message}`);
    }
  }

  private async remove(m: Message): Promise<void> {
    const err = await this.app.client.remove(this.roomId, m.id);
    if (err) this.app.notice(`Not deleted: ${err.message}`);
    this.confirmDeleteId = null;
    this.renderMessages();
  }

  private async leave(): Promise<void> {
    const err = await this.app.client.leave(this.roomId);
    if (err) return this.app.notice(err.message);
    this.app.go("#/");
  }

  private toggleInvite(): void {
    if (!this.invitePanel.hidden) {
      this.invitePanel.hidden = true;
      this.renderHeader();
      return;
    }
    const q = h("input", { testid: "invite-search", type: "search", "aria-label": "Who to invite", placeholder: "name" });
    const results = h("ul", { class: "found", "aria-live": "polite" });
    const search = async () => {
      const r = await this.app.api.call<{ users: User[] }>("GET", `/api/v1/users?q=${encodeURIComponent(q.value.trim())}`);
      const member = new Set((this.app.client.members.get(this.roomId) ?? []).map((u) => u.id));
      const candidates = r.users.filter((u) => !member.has(u.id));
      fill(results, ...candidates.map((u) => h("li", {}, h("button", { type: "button", testid: "invite-user", "data-user": u.id, onclick: () => void this.invite(u) }, `Add ${u.display_name}`, h("small", {}, ` @${u.username}`)))),
        candidates.length ? null : h("li", { class: "muted" }, "Nobody to add"));
    };
    fill(this.invitePanel, h("form", { onsubmit: (e) => { e.preventDefault(); void search().catch((err: Error) => this.app.notice(err.message)); } },
      q, h("button", { type: "submit", testid: "invite-find" }, "Find")), results);
    this.invitePanel.hidden = false;
    this.renderHeader();
    q.focus();
  }

  private async invite(u: User): Promise<void> {
    try {
      await this.app.api.call("POST", `/api/v1/rooms/${this.roomId}/members`, { user_id: u.id });
      this.app.notice(`${u.display_name} was added.`);
      this.invitePanel.hidden = true;
      this.renderHeader();
    } catch (err) {
      this.app.notice((err as Error).message);
    }
  }
}

const GROUP_WINDOW_MS = 5 * 60_000;

/** A message that follows its author's previous one closely is shown without the name and time. */
function continues(prev: Message | null, m: Message): boolean {
  if (!prev || m.reply_to || prev.author_kind !== m.author_kind || prev.author_id !== m.author_id || m.author_kind === "system") return false;
  if (prev.author_id === null && prev.author_name !== m.author_name) return false;
  return Date.parse(m.created_at) - Date.parse(prev.created_at) < GROUP_WINDOW_MS;
}
