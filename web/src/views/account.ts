// The account page: the picture, the display name, and a password change (the current password
// is needed; every other login is logged out, this one stays with fresh tokens).
//
// "Change picture" uploads the chosen image like an attachment (uploads.ts), then makes it the
// picture (PUT /api/v1/users/me/avatar); the server keeps its thumbnail and deletes the previous
// picture. "Remove picture" goes back to the initials.
import { h, say } from "../dom";
import type { User } from "../types";
import { startUpload } from "../uploads";
import type { App } from "./app";
import { avatar, setAvatar } from "./avatar";

/** What the picture input offers; the server checks the content (PNG, JPEG, WebP, GIF). */
export const PICTURE_TYPES = "image/png,image/jpeg,image/webp,image/gif";

const PASSWORD_MIN = 8;

export function accountPane(app: App): HTMLElement {
  const status = h("p", { class: "notice-inline", testid: "account-status", role: "status" });
  const error = h("p", { class: "error", testid: "account-error", role: "alert" });
  const done = (text: string) => { say(error, ""); say(status, text); };
  const failed = (err: unknown) => { say(status, ""); say(error, (err as Error).message); };

  const picture = avatar(app.me.display_name, app.me.avatar_url, "big");
  const remove = h("button", { type: "button", testid: "account-remove-picture", hidden: !app.me.avatar_url }, "Remove picture");
  const showPicture = (u: User) => {
    app.pictured(u);
    setAvatar(picture, app.me.display_name, app.me.avatar_url);
    remove.hidden = !app.me.avatar_url;
  };
  const file = h("input", { type: "file", accept: PICTURE_TYPES, testid: "account-picture-file", hidden: true,
    onchange: async () => {
      const chosen = file.files?.[0];
      file.value = "";
      if (!chosen) return;
      say(status, "Uploading your picture…");
      try {
        const up = await startUpload(chosen, { token: () => app.api.freshToken(), refresh: () => app.api.refresh() }).promise;
        const r = await app.api.call<{ user: User }>("PUT", "/api/v1/users/me/avatar", { upload_id: up.id });
        showPicture(r.user);
        done("Your picture was changed.");
      } catch (err) {
        failed(err);
      }
    } });
  remove.addEventListener("click", async () => {
    try {
      const r = await app.api.call<{ user: User }>("DELETE", "/api/v1/users/me/avatar");
      showPicture(r.user);
      done("Your picture was removed.");
    } catch (err) {
      failed(err);
    }
  });
  const pictureSection = h("div", { class: "account-section", role: "group", "aria-label": "Picture" },
    h("button", { type: "button", testid: "account-change-picture", onclick: () => file.click() }, "Change picture"),
    remove, file,
    h("p", { class: "muted small" }, "A PNG, JPEG, WebP or GIF image; others see it next to your name."));

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
    h("h2", {}, picture, " Your account"),
    h("p", { class: "muted" }, `@${app.me.username}`),
    status, error, pictureSection, nameForm, passForm);
}
