// Admin: the desk's queues (departments) — create one with its colour, greeting, away message
// and member agents, delete one — and the routing rule of each WhatsApp number (none, greeting
// menu, AI triage, default queue). Members' capacities are set through the REST API.
import { fill, h, say } from "../dom";
import type { Queue, User } from "../types";
import type { App } from "./app";

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

export function queuesSection(app: App, status: HTMLElement): HTMLElement {
  const list = h("ul", { class: "queues", testid: "queues" });
  const load = async () => {
    try {
      const r = await app.api.call<{ queues: Queue[] }>("GET", "/api/v1/queues");
      fill(list, ...r.queues.map((q) => h("li", { "data-queue": q.id },
        h("span", { class: "queue-badge", style: `border-color: ${q.color}` }, q.name), " ",
        h("small", { class: "muted" }, q.members.map((m) => m.display_name).join(", ") || "no members"), " ",
        h("button", { type: "button", class: "danger", testid: "queue-delete", "aria-label": `Delete ${q.name}`, onclick: async () => {
          try {
            await app.api.call("DELETE", `/api/v1/queues/${q.id}`);
            say(status, `${q.name} was deleted.`);
            await load();
          } catch (err) {
            say(status, (err as Error).message);
          }
        } }, "Delete"))),
      r.queues.length ? null : h("li", { class: "muted" }, "No queue yet."));
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
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
