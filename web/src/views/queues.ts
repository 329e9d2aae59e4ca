// Admin: the desk's queues (departments) — create one with its colour, greeting, away message
// and member agents, add and remove the agents of an existing one, delete one — and the routing
// rule of each WhatsApp number (none, greeting menu, AI triage, default queue). Each agent's
// capacity (open conversations auto-assigned at most; empty: the desk's default) is set in the
// agent's row; every other edit of the member list keeps it. Other admins' changes show at once
// (`queue:updated`, `queue:deleted`).
import { fill, h, say } from "../dom";
import type { Queue, User } from "../types";
import type { App } from "./app";
import { clearError, showError } from "./errors";

export const ROUTINGS: [value: string, label: string][] = [
  ["none", "No queues (everyone sees it, the assistant answers)"],
  ["menu", "Greeting menu"],
  ["ai", "AI triage"],
  ["default", "Default queue"],
];

/** The body of POST /api/v1/queues from the form's values. */
export function queueBody(values: { name: string; color: string; greeting: string; away: string; members: number[] }): Record<string, unknown> {
  return { name: values.name.trim(), color: values.color, greeting: values.greeting.trim(), away_message: values.away.trim(),
    members: values.members.map((user_id) => ({ user_id })) };
}

type Member = Queue["members"][number];

export const CAPACITY_MAX = 1000; // the route's bound

export type MembersChange = { add?: number; remove?: number; capacity?: { user_id: number; value: number | null } };

/** The body's `members` of PATCH /api/v1/queues/{id} (it replaces the list): the queue's members
 * with `add` added, `remove` taken out and `capacity` set for one of them (null: the desk's
 * default), every other member keeping the capacity it had. */
export function membersBody(members: readonly Member[], change: MembersChange): { user_id: number; capacity?: number }[] {
  const ids = members.filter((m) => m.user_id !== change.remove).map((m) => {
    const capacity = change.capacity?.user_id === m.user_id ? change.capacity.value : m.capacity;
    return { user_id: m.user_id, ...(capacity === null ? {} : { capacity }) };
  });
  if (change.add !== undefined && !ids.some((m) => m.user_id === change.add)) ids.push({ user_id: change.add });
  return ids;
}

/** A capacity field's value: null when empty (the desk's default), a whole number in range, or
 * undefined for anything else (the field says so and nothing is sent). */
export function parseCapacity(raw: string): number | null | undefined {
  const text = raw.trim();
  if (text === "") return null;
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= CAPACITY_MAX ? n : undefined;
}

/** The staff who can be added to a queue: those not in it yet, by name. */
export function addableStaff(staff: readonly User[], members: readonly Member[]): User[] {
  const taken = new Set(members.map((m) => m.user_id));
  return staff.filter((u) => !taken.has(u.id)).sort((a, b) => a.display_name.localeCompare(b.display_name));
}

/** A queue's agents, each with a Remove button, and a pick of staff to add (admins). Every
 * change is one PATCH with the whole list; a refusal shows beside the form. */
export class QueueMembersEditor {
  readonly el: HTMLElement;
  private readonly list = h("ul", { testid: "queue-member-list", "aria-label": "Agents" });
  private readonly pick = h("select", { testid: "queue-member-pick", "aria-label": "Agent to add" });
  private readonly error = h("p", { class: "error small", testid: "queue-members-error", "aria-live": "polite" });
  private staff: User[] = [];
  private stale = false; // another admin's change came while a capacity field had the focus

  constructor(private queue: Queue, private readonly source: {
    staff(): Promise<User[]>;
    save(queueId: number, members: { user_id: number; capacity?: number }[]): Promise<Queue>;
    onSaved(q: Queue): void;
  }) {
    const form = h("form", { class: "row", "aria-label": `Add an agent to ${queue.name}`, onsubmit: (e) => {
      e.preventDefault();
      const id = Number(this.pick.value);
      if (id) void this.change({ add: id });
    } }, this.pick, h("button", { type: "submit", testid: "queue-member-add" }, "Add"));
    this.el = h("div", { class: "queue-member-editor", testid: "queue-member-editor" }, this.list, form, this.error);
    // the list follows a change deferred while a field had the focus once the field is left
    // (after its own change event, which has saved what was typed)
    this.list.addEventListener("focusout", () => setTimeout(() => {
      if (this.stale && !this.editing()) this.render();
    }));
    this.render();
    void source.staff().then((s) => { this.staff = s; this.render(); }, (err: Error) => { this.error.textContent = err.message; });
  }

  /** Another admin's (or tab's) change to this queue. The next save starts from its members, so
   * it does not undo that change. While an agent's capacity field has the focus the list is not
   * rendered again: that would take the field away mid-typing, and the browser commits a field
   * taken away (its change event), saving a half-typed number. It is rendered once the field is left. */
  follow(queue: Queue): void {
    this.queue = queue;
    if (this.editing()) this.stale = true;
    else this.render();
  }

  /** Whether an agent's capacity field in this list has the focus. */
  private editing(): boolean {
    const active = this.el.ownerDocument.activeElement;
    return active instanceof HTMLInputElement && active.classList.contains("capacity") && this.list.contains(active);
  }

  private render(): void {
    this.stale = false;
    fill(this.list, ...this.queue.members.map((m) => h("li", { testid: "queue-member-row", "data-user": m.user_id },
      h("span", {}, m.display_name), " ", h("small", { class: "muted" }, `@${m.username}`), " ",
      this.capacityField(m), " ",
      h("button", { type: "button", testid: "queue-member-remove", "aria-label": `Remove ${m.display_name} from ${this.queue.name}`,
        onclick: () => void this.change({ remove: m.user_id }) }, "Remove"))),
    this.queue.members.length ? null : h("li", { class: "muted" }, "No agents."));
    const choices = addableStaff(this.staff, this.queue.members);
    fill(this.pick, h("option", { value: "" }, choices.length ? "Add an agent…" : "No one else to add"),
      ...choices.map((u) => h("option", { value: u.id }, `${u.display_name} (@${u.username})`)));
  }

  /** The agent's capacity: saved when changed (Enter or leaving the field); empty is the default. */
  private capacityField(m: Member): HTMLElement {
    const input = h("input", { type: "number", min: 1, max: CAPACITY_MAX, step: 1, inputmode: "numeric", class: "capacity",
      testid: "queue-member-capacity", value: m.capacity === null ? "" : String(m.capacity), placeholder: "default",
      "aria-label": `Most open conversations auto-assigned to ${m.display_name} in ${this.queue.name} (empty: the default)` });
    input.addEventListener("change", () => {
      const value = parseCapacity(input.value);
      if (value === undefined) {
        showError(this.error, new Error(`A capacity is a whole number from 1 to ${CAPACITY_MAX}, or empty for the default.`));
        return;
      }
      if (value !== m.capacity) void this.change({ capacity: { user_id: m.user_id, value } });
    });
    return h("label", { class: "capacity-field" }, h("span", { class: "muted small" }, "up to "), input);
  }

  private async change(change: MembersChange): Promise<void> {
    clearError(this.error);
    try {
      const saved = await this.source.save(this.queue.id, membersBody(this.queue.members, change));
      // a change heard while the save was on its way may be newer than its answer (another
      // admin's, stored after ours): the list keeps it rather than going back to the answer
      if (isOlder(saved, this.queue)) return;
      this.queue = saved;
      this.render();
      this.source.onSaved(this.queue);
    } catch (err) {
      showError(this.error, err);
    }
  }
}

/** A queue's change as the desk's sockets hear it (`queue:updated` with the queue, `queue:deleted`). */
export type QueueEvent = { queue: Queue } | { deleted: number };

/** What a queue event does to a list showing `shown` (each queue as last rendered): nothing when
 * it shows that already (the viewer's own save) or something newer, otherwise update that item, or
 * reload the list. */
export function queueEventAction(shown: ReadonlyMap<number, Queue>, e: QueueEvent): "none" | "item" | "list" {
  if ("deleted" in e) return shown.has(e.deleted) ? "list" : "none";
  const had = shown.get(e.queue.id);
  if (had === undefined) return "list";
  // the same state (the viewer's own save), or an older one heard after a newer one
  return JSON.stringify(had) === JSON.stringify(e.queue) || isOlder(e.queue, had) ? "none" : "item";
}

/** Whether `a` is an older state of the queue than `b` (each change moves `updated_at` forward). */
export function isOlder(a: Queue, b: Queue): boolean {
  return a.updated_at < b.updated_at;
}

export function queuesSection(app: App, status: HTMLElement): HTMLElement {
  const list = h("ul", { class: "queues", testid: "queues" });
  const shown = new Map<number, Queue>(); // each item's queue as rendered or last saved from it
  const items = new Map<number, QueueItem>();
  const item = (q: Queue) => {
    shown.set(q.id, q);
    const it = queueItem(app, q, status, load, (saved) => shown.set(saved.id, saved));
    items.set(q.id, it);
    return it.el;
  };
  const load = async () => {
    try {
      const r = await app.api.call<{ queues: Queue[] }>("GET", "/api/v1/queues");
      shown.clear();
      items.clear();
      fill(list, ...r.queues.map(item), r.queues.length ? null : h("li", { class: "muted" }, "No queue yet."));
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  // another admin's (or tab's) change shows at once; the listener of a page left behind goes
  // at the next event
  const onEvent = (e: QueueEvent) => {
    if (!list.isConnected) {
      app.queueListeners.delete(onEvent);
      return;
    }
    const action = queueEventAction(shown, e);
    if (action === "list") void load();
    else if (action === "item" && "queue" in e) {
      shown.set(e.queue.id, e.queue);
      items.get(e.queue.id)?.update(e.queue); // in place: the agents' list stays as unfolded as it was
    }
  };
  app.queueListeners.add(onEvent);
  const name = h("input", { name: "name", testid: "queue-name", required: true, maxlength: 60 });
  const color = h("input", { name: "color", testid: "queue-color", type: "color", value: "#3b82f6" });
  const greeting = h("textarea", { name: "greeting", testid: "queue-greeting", rows: 2, maxlength: 1000 });
  const away = h("textarea", { name: "away_message", testid: "queue-away", rows: 2, maxlength: 1000 });
  const members = h("fieldset", { class: "queue-members" }, h("legend", {}, "Agents"));
  void app.staffList().then((staff: User[]) => members.append(...staff.map((u) =>
    h("label", {}, h("input", { type: "checkbox", value: u.id, testid: "queue-member" }), ` ${u.display_name}`))));
  const form = h("form", { class: "queue-form", "aria-label": "Create a queue", onsubmit: async (e) => {
    e.preventDefault();
    const picked = [...members.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => Number(i.value));
    try {
      await app.api.call("POST", "/api/v1/queues", queueBody({ name: name.value, color: color.value, greeting: greeting.value,
        away: away.value, members: picked }));
      form.reset();
      say(status, "The queue was created.");
      await load();
    } catch (err) {
      say(status, (err as Error).message);
    }
  } },
  h("label", { class: "field" }, h("span", {}, "Name"), name), h("label", { class: "field" }, h("span", {}, "Colour"), color),
  h("label", { class: "field" }, h("span", {}, "Greeting (sent when a conversation is routed here)"), greeting),
  h("label", { class: "field" }, h("span", {}, "Away message (sent once while nobody is available)"), away),
  members, h("button", { type: "submit", class: "primary", testid: "queue-add" }, "Create queue"));
  void load();
  return h("section", { "aria-labelledby": "admin-queues" }, h("h2", { id: "admin-queues" }, "Queues"), list, form);
}

/** One queue in the admin's list, and how it follows another admin's change in place. */
interface QueueItem {
  el: HTMLElement;
  update(q: Queue): void;
}

/** One queue in the admin's list: its name, agents, Delete, and the agents' editor (folded). */
function queueItem(app: App, q: Queue, status: HTMLElement, reload: () => Promise<void>, onSaved: (q: Queue) => void): QueueItem {
  let current = q;
  const badge = h("span", { class: "queue-badge" });
  const names = h("small", { class: "muted", testid: "queue-member-names" });
  const summary = h("summary", { testid: "queue-members-toggle" });
  const remove = h("button", { type: "button", class: "danger", testid: "queue-delete", onclick: async () => {
    const { id, name } = current;
    try {
      await app.api.call("DELETE", `/api/v1/queues/${id}`);
      say(status, `${name} was deleted.`);
      await reload();
    } catch (err) {
      say(status, (err as Error).message);
    }
  } }, "Delete");
  const show = (x: Queue) => {
    current = x;
    badge.textContent = x.name;
    badge.style.borderColor = x.color;
    names.textContent = memberNames(x);
    summary.textContent = `Agents of ${x.name}`;
    remove.setAttribute("aria-label", `Delete ${x.name}`);
  };
  show(q);
  const editor = new QueueMembersEditor(q, {
    staff: () => app.staffList(),
    save: async (id, members) => (await app.api.call<{ queue: Queue }>("PATCH", `/api/v1/queues/${id}`, { members })).queue,
    onSaved: (saved) => { show(saved); onSaved(saved); },
  });
  const el = h("li", { "data-queue": q.id }, badge, " ", names, " ", remove,
    h("details", { testid: "queue-members" }, summary, editor.el));
  return { el, update: (x) => { show(x); editor.follow(x); } };
}

function memberNames(q: Queue): string {
  return q.members.map((m) => m.display_name).join(", ") || "no members";
}

/** The routing rule of one WhatsApp number: a select of rules and one of queues (the default). */
export function routingControl(app: App, accountId: number, status: HTMLElement): HTMLElement {
  const rule = h("select", { testid: "wa-routing", "aria-label": "Routing of new conversations" },
    ...ROUTINGS.map(([v, label]) => h("option", { value: v }, label)));
  const fallback = h("select", { testid: "wa-default-queue", "aria-label": "Default queue" }, h("option", { value: "" }, "No default queue"));
  const save = async () => {
    try {
      await app.api.call("PUT", `/api/v1/admin/wa/accounts/${accountId}/routing`,
        { routing: rule.value, default_queue_id: fallback.value ? Number(fallback.value) : null });
      say(status, "The routing rule was saved.");
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  void Promise.all([
    app.api.call<{ queues: Queue[] }>("GET", "/api/v1/queues"),
    app.api.call<{ routing: string; default_queue_id: number | null }>("GET", `/api/v1/admin/wa/accounts/${accountId}/routing`),
  ]).then(([q, r]) => {
    fallback.append(...q.queues.map((x) => h("option", { value: x.id, selected: x.id === r.default_queue_id }, x.name)));
    rule.value = r.routing;
  }).catch((err: Error) => say(status, err.message));
  rule.addEventListener("change", () => void save());
  fallback.addEventListener("change", () => void save());
  return h("span", { class: "routing" }, rule, fallback);
}
