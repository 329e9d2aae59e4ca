// Admin pages: users and their roles; the WhatsApp business numbers (secrets are write-only:
// the server never returns them) and their routing rules; the desk's queues; the audit log.
import { fill, h, say } from "../dom";
import type { User } from "../types";
import type { App } from "./app";
import { auditSection } from "./audit";
import { queuesSection, routingControl } from "./queues";
import { sessionsSection } from "./sessions";

interface Account {
  id: number;
  name?: string;
  phone_number_id: string;
  display_phone: string;
}

const USERS_PAGE = 100;
const ACCOUNT_FIELDS: [name: string, label: string, secret: boolean][] = [
  ["name", "Name (optional)", false],
  ["phone_number_id", "Phone number id", false],
  ["display_phone", "Display phone", false],
  ["access_token", "Access token", true],
  ["app_secret", "App secret", true],
  ["verify_token", "Webhook verify token", true],
];

export function adminPane(app: App): HTMLElement {
  const status = h("p", { class: "notice-inline", testid: "admin-status", role: "status" });
  return h("section", { class: "admin", "aria-label": "Administration" }, status, usersSection(app, status), accountsSection(app, status),
    queuesSection(app, status), sessionsSection(app, status), auditSection(app, status));
}

function usersSection(app: App, status: HTMLElement): HTMLElement {
  const body = h("tbody", {});
  const more = h("button", { type: "button", testid: "admin-users-more", hidden: true }, "More users");
  let after = 0;
  const load = async () => {
    try {
      const r = await app.api.call<{ users: AdminUser[] }>("GET", `/api/v1/admin/users?limit=${USERS_PAGE}&after_id=${after}`);
      for (const u of r.users) body.append(userRow(app, u, status));
      if (r.users.length) after = r.users[r.users.length - 1].id;
      more.hidden = r.users.length < USERS_PAGE;
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  more.addEventListener("click", () => void load());
  void load();
  return h("section", { "aria-labelledby": "admin-users" }, h("h2", { id: "admin-users" }, "Users"),
    h("div", { class: "table-wrap" }, h("table", { testid: "admin-users" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "User"), h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Kind"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Account"))),
      body)), more);
}

/** A user as admins list them: with the account's state. */
interface AdminUser extends User {
  deactivated_at?: string | null;
  must_change_password?: boolean;
}

/** Deactivate / reactivate and force a password reset (not on one's own account). */
function accountCell(app: App, u: AdminUser, status: HTMLElement): HTMLElement {
  const cell = h("div", { class: "row" });
  const render = () => {
    if (u.kind !== "human" || u.id === app.me.id) return fill(cell, u.deactivated_at ? "deactivated" : "active");
    const act = async (path: string, done: string) => {
      try {
        const r = await app.api.call<{ user: AdminUser }>("POST", `/api/v1/admin/users/${u.id}/${path}`);
        Object.assign(u, r.user);
        say(status, done);
        render();
      } catch (err) {
        say(status, (err as Error).message);
      }
    };
    fill(cell,
      u.deactivated_at
        ? h("button", { type: "button", testid: "user-reactivate", onclick: () => void act("reactivate", `${u.username} can log in again.`) }, "Reactivate")
        : h("button", { type: "button", class: "danger", testid: "user-deactivate", onclick: () => void act("deactivate", `${u.username} is deactivated and was logged out.`) }, "Deactivate"),
      u.must_change_password ? h("small", { class: "muted" }, "must set a new password")
        : h("button", { type: "button", testid: "user-force-reset", onclick: () => void act("force-password-reset", `${u.username} must set a new password at the next login.`) }, "Force password reset"));
  };
  render();
  return h("td", {}, cell);
}

function userRow(app: App, u: AdminUser, status: HTMLElement): HTMLElement {
  const select = h("select", { testid: "role-select", "data-user": u.id, "aria-label": `Role of ${u.username}`, disabled: u.kind !== "human" },
    ...["user", "staff", "supervisor", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
  select.addEventListener("change", async () => {
    const previous = u.role;
    try {
      const r = await app.api.call<{ user: User }>("PATCH", `/api/v1/admin/users/${u.id}`, { role: select.value });
      u.role = r.user.role;
      say(status, `${u.username} is now ${u.role}.`);
    } catch (err) {
      select.value = previous;
      say(status, (err as Error).message);
    }
  });
  return h("tr", { "data-user": u.id }, h("td", {}, u.username), h("td", {}, u.display_name), h("td", {}, u.kind), h("td", {}, select), accountCell(app, u, status));
}

function accountsSection(app: App, status: HTMLElement): HTMLElement {
  const list = h("ul", { class: "accounts", testid: "wa-accounts" });
  const load = async () => {
    try {
      const r = await app.api.call<{ accounts: Account[] }>("GET", "/api/v1/admin/wa/accounts");
      fill(list, ...r.accounts.map((a) => h("li", { "data-account": a.id },
        h("b", {}, a.display_phone), ` ${a.name ? `${a.name} ` : ""}(${a.phone_number_id}) `, routingControl(app, a.id, status), " ",
        h("button", { type: "button", testid: "wa-account-remove", "aria-label": `Remove ${a.display_phone}`, onclick: async () => {
          try {
            await app.api.call("DELETE", `/api/v1/admin/wa/accounts/${a.id}`);
            say(status, `${a.display_phone} was removed.`);
            await load();
          } catch (err) {
            say(status, (err as Error).message);
          }
        } }, "Remove"))),
      r.accounts.length ? null : h("li", { class: "muted" }, "No WhatsApp number yet."));
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  const inputs = ACCOUNT_FIELDS.map(([name, label, secret]) => {
    const el = h("input", { name, testid: `wa-account-${name.replace(/_/g, "-")}`, type: secret ? "password" : "text", autocomplete: "off", required: name !== "name" });
    return { name, el, field: h("label", { class: "field" }, h("span", {}, label), el) };
  });
  const form = h("form", { class: "account-form", "aria-label": "Add a WhatsApp number", onsubmit: async (e) => {
    e.preventDefault();
    const body = Object.fromEntries(inputs.filter((i) => i.el.value.trim()).map((i) => [i.name, i.el.value.trim()]));
    try {
      await app.api.call("POST", "/api/v1/admin/wa/accounts", body);
      form.reset();
      say(status, "The number was added.");
      await load();
    } catch (err) {
      say(status, (err as Error).message);
    }
  } }, ...inputs.map((i) => i.field), h("button", { type: "submit", class: "primary", testid: "wa-account-add" }, "Add number"));
  void load();
  return h("section", { "aria-labelledby": "admin-wa" }, h("h2", { id: "admin-wa" }, "WhatsApp numbers"), list, form);
}
