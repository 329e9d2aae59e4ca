// A room's settings, for its owners and server admins: name, topic, archive (read-only) or
// unarchive, delete, and its members (make owner, remove). The server checks every change
// (only owners and admins manage) and tells every member with `room:updated`,
// `member:removed` and `room:deleted`; each change also lands in the history as a notice.
import { fill, h, say } from "../dom";
import type { Member, Room } from "../types";
import type { App } from "./app";

export class RoomSettings {
  readonly el: HTMLElement;
  private readonly status = h("p", { class: "error", role: "alert", testid: "room-settings-status" });
  private readonly name: HTMLInputElement;
  private readonly topic: HTMLInputElement;
  private readonly people = h("ul", { class: "settings-members", testid: "room-settings-members" });
  private confirmingDelete = false;
  private readonly dangerRow = h("div", { class: "row" });

  constructor(private readonly app: App, private readonly room: Room, private readonly members: Member[], private readonly close: () => void) {
    this.name = h("input", { testid: "room-settings-name", value: room.name, maxlength: 80, required: true, "aria-label": "Room name" });
    this.topic = h("input", { testid: "room-settings-topic", value: room.topic, maxlength: 300, "aria-label": "Topic", placeholder: "what the room is about" });
    const archived = Boolean(room.archived_at);
    this.el = h("div", { class: "settings" },
      h("h3", {}, "Room settings ", h("small", { class: "muted" }, `#${room.slug}`)),
      h("form", { class: "settings-form", onsubmit: (e) => { e.preventDefault(); void this.save(); } },
        h("label", { class: "field" }, h("span", {}, "Name"), this.name),
        h("label", { class: "field" }, h("span", {}, "Topic"), this.topic),
        h("div", { class: "row" },
          h("button", { type: "submit", class: "primary", testid: "room-settings-save", disabled: archived }, "Save"),
          h("button", { type: "button", onclick: () => this.close() }, "Close"))),
      h("h4", {}, "Members"), this.people,
      h("h4", {}, archived ? "Archived" : "Archive or delete"),
      this.dangerRow, this.status);
    this.renderMembers();
    this.renderDanger();
  }

  focus(): void {
    this.name.focus();
  }

  private async save(): Promise<void> {
    const body: Record<string, string> = {};
    if (this.name.value.trim() !== this.room.name) body.name = this.name.value.trim();
    if (this.topic.value.trim() !== this.room.topic) body.topic = this.topic.value.trim();
    if (!Object.keys(body).length) return this.close();
    await this.act("PATCH", `/api/v1/rooms/${this.room.id}`, body, "Saved.");
  }

  private renderDanger(): void {
    const archived = Boolean(this.room.archived_at);
    fill(this.dangerRow,
      h("button", { type: "button", testid: "room-archive", onclick: () => void this.act("PATCH", `/api/v1/rooms/${this.room.id}`, { archived: !archived }, archived ? "The room takes messages again." : "The room is archived: read-only.") },
        archived ? "Unarchive" : "Archive (read-only)"),
      this.confirmingDelete
        ? h("span", { class: "row" }, "Delete the room and all its messages for everyone?",
          h("button", { type: "button", class: "danger", testid: "room-delete-confirm", onclick: () => void this.remove() }, "Delete"),
          h("button", { type: "button", onclick: () => { this.confirmingDelete = false; this.renderDanger(); } }, "Keep"))
        : h("button", { type: "button", class: "danger", testid: "room-delete", onclick: () => { this.confirmingDelete = true; this.renderDanger(); } }, "Delete room…"));
  }

  private renderMembers(): void {
    const me = this.app.me.id;
    fill(this.people, ...this.members.filter((m) => m.kind !== "assistant").map((m) => h("li", { "data-user": m.id },
      h("span", { class: "name" }, m.display_name, m.member_role === "owner" ? h("small", { class: "muted" }, " owner") : null),
      m.id === me ? null : h("span", { class: "row" },
        h("button", { type: "button", testid: "member-role", onclick: () => void this.setRole(m) }, m.member_role === "owner" ? "Make member" : "Make owner"),
        h("button", { type: "button", testid: "member-remove", "aria-label": `Remove ${m.display_name}`, onclick: () => void this.removeMember(m) }, "Remove")))));
  }

  private async setRole(m: Member): Promise<void> {
    const role = m.member_role === "owner" ? "member" : "owner";
    if (await this.act("PUT", `/api/v1/rooms/${this.room.id}/members/${m.id}/role`, { role }, `${m.display_name} is now ${role === "owner" ? "an owner" : "a member"}.`, false)) {
      m.member_role = role;
      this.renderMembers();
    }
  }

  private async removeMember(m: Member): Promise<void> {
    if (await this.act("DELETE", `/api/v1/rooms/${this.room.id}/members/${m.id}`, undefined, `${m.display_name} was removed.`, false)) {
      const i = this.members.indexOf(m);
      if (i >= 0) this.members.splice(i, 1);
      this.renderMembers();
    }
  }

  private async remove(): Promise<void> {
    if (await this.act("DELETE", `/api/v1/rooms/${this.room.id}`, undefined, "The room was deleted.", false)) this.app.go("#/");
  }

  /** One request; true when it went through. The room's new state comes back as `room:updated`. */
  private async act(method: string, path: string, body: unknown, done: string, closeAfter = true): Promise<boolean> {
    try {
      const r = await this.app.api.call<{ room?: Room } | undefined>(method, path, body);
      if (r?.room) this.app.client.onRoomUpdated(r.room);
      this.app.notice(done);
      if (closeAfter) this.close();
      return true;
    } catch (err) {
      say(this.status, (err as Error).message);
      return false;
    }
  }
}
