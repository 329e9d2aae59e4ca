// The account page: the display name, and a password change (the current password is needed;
// every other login is logged out, this one stays with fresh tokens).
import { h, say } from "../dom";
import type { User } from "../types";
import type { App } from "./app";
import { initials } from "./sidebar";

const PASSWORD_MIN = 8;

export function accountPane(app: App): HTMLElement {
  const status = h("p", { class: "notice-inline", testid: "account-status", role: "status" });
  const error = h("p", { class: "error", testid: "account-error", role: "alert" });
  const done = (text: string) => { say(error, ""); say(status, text); };
  const failed = (err: unknown) => { say(status, ""); say(error, (err as Error).message); };

  const name = h("input", { testid: "account-display-name", value: app.me.display_name, maxlength: 64, required: true, autocomplete: "nickname" });
  const nameForm = h("form", { class: "account-section", "aria-label": "Display name", onsubmit: async (e) => {
    e.preventDefault();
    const value = name.value.trim();
    if (!value) return failed(new Error("Your name cannot be empty."));
    try {
      const r = await app.api.call<{ user: User }>("PATCH", "/api/v1/users/me", { display_name: value });
      app.renamed(r.user);
      done("Your name was changed.");
    } catch (err) {
      failed(err);
    }
  } },
  h("label", { class: "field" }, h("span", {}, "Display name"), name),
  h("button", { type: "submit", class: "primary", testid: "account-save-name" }, "Save name"));

  const current = h("input", { type: "password", testid: "account-current-password", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", testid: "account-new-password", autocomplete: "new-password", required: true, minlength: PASSWORD_MIN });
  const again = h("input", { type: "password", testid: "account-new-password-again", autocomplete: "new-password", required: true });
  const passForm = h("form", { class: "account-section", "aria-label": "Change password", onsubmit: async (e) => {
    e.preventDefault();
    if (next.value.length < PASSWORD_MIN) return failed(new Error(`A password has at least ${PASSWORD_MIN} characters.`));
    if (next.value !== again.value) return failed(new Error("The new passwords do not match."));
    try {
      const tokens = await app.api.call<{ access_token: string; refresh_token: string }>("POST", "/api/v1/users/me/password",
        { current_password: current.value, new_password: next.value });
      app.api.setTokens(tokens);
      void app.conn.renew();
      current.value = next.value = again.value = "";
      done("Your password was changed. Your other devices were logged out.");
    } catch (err) {
      failed(err);
    }
  } },
  h("label", { class: "field" }, h("span", {}, "Current password"), current),
  h("label", { class: "field" }, h("span", {}, "New password"), next),
  h("label", { class: "field" }, h("span", {}, "New password again"), again),
  h("button", { type: "submit", class: "primary", testid: "account-change-password" }, "Change password"),
  h("p", { class: "muted small" }, "Your other devices and browsers are logged out; this one stays."));

  return h("section", { class: "account", "aria-label": "Your account" },
    h("h2", {}, h("span", { class: "avatar big", "aria-hidden": "true" }, initials(app.me.display_name)), " Your account"),
    h("p", { class: "muted" }, `@${app.me.username}`),
    status, error, nameForm, passForm);
}
