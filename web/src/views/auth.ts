// The login page: username + password (log in or create an account), or a one-time code sent
// by WhatsApp.
import { type Api, ApiError } from "../api";
import { fill, h, say } from "../dom";
import type { User } from "../types";

export function authView(root: HTMLElement, api: Api, onLoggedIn: (u: User) => void, notice = ""): void {
  const err = h("p", { class: "error", testid: "auth-error", role: "alert" }, notice);
  const field = (label: string, input: HTMLInputElement) => h("label", { class: "field" }, h("span", {}, label), input);
  const user = h("input", { testid: "login-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const pass = h("input", { testid: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const display = h("input", { testid: "register-display-name", name: "display_name", autocomplete: "nickname", placeholder: "optional" });
  const phone = h("input", { testid: "otp-phone", name: "phone", type: "tel", autocomplete: "tel", placeholder: "+4915112345678" });
  const code = h("input", { testid: "otp-code", name: "code", inputmode: "numeric", autocomplete: "one-time-code", placeholder: "6 digits" });
  let busy = false;

  const go = async (path: string, body: Record<string, string>) => {
    if (busy) return;
    busy = true;
    say(err, "");
    try {
      onLoggedIn(await api.login(path, body));
    } catch (e) {
      if (e instanceof ApiError && e.code === "password_change_required") showReset(body.username, body.password);
      say(err, (e as Error).message);
    } finally {
      busy = false;
    }
  };
  const register = () => {
    if (!user.value || !pass.value) return say(err, "Choose a username and a password.");
    const body: Record<string, string> = { username: user.value.trim(), password: pass.value };
    if (display.value.trim()) body.display_name = display.value.trim();
    void go("/api/v1/auth/register", body);
  };
  const requestCode = async () => {
    if (!phone.value.trim()) return say(err, "Enter your phone number.");
    try {
      await api.call("POST", "/api/v1/auth/otp/request", { phone: phone.value.trim() });
      say(err, "We sent a code to your WhatsApp.");
      code.focus();
    } catch (e) {
      say(err, (e as Error).message);
    }
  };

  // an admin forced a reset: the old password once more, and a new one, then in
  const newPass = h("input", { testid: "reset-new-password", type: "password", autocomplete: "new-password", minlength: 8, required: true });
  const resetForm = h("form", { class: "reset", testid: "reset-form", "aria-label": "Set a new password", hidden: true },
    h("p", {}, "An administrator asked you to choose a new password."),
    field("New password", newPass),
    h("button", { type: "submit", class: "primary", testid: "reset-submit" }, "Set password and log in"));
  const showReset = (username: string, password: string) => {
    resetForm.hidden = false;
    resetForm.onsubmit = (e) => {
      e.preventDefault();
      void go("/api/v1/auth/password", { username, password, new_password: newPass.value });
    };
    newPass.focus();
  };

  fill(root, h("main", { class: "auth" },
    h("h1", {}, "Chat"),
    h("form", { "aria-label": "Log in with a password", onsubmit: (e) => { e.preventDefault(); void go("/api/v1/auth/login", { username: user.value.trim(), password: pass.value }); } },
      field("Username", user), field("Password", pass),
      h("details", { class: "register" }, h("summary", {}, "New here? Choose a display name"), field("Display name", display)),
      h("div", { class: "row" },
        h("button", { type: "submit", class: "primary", testid: "login-submit" }, "Log in"),
        h("button", { type: "button", testid: "register-submit", onclick: register }, "Create account"))),
    resetForm,
    h("details", { class: "otp" }, h("summary", {}, "Log in with a WhatsApp code"),
      h("form", { "aria-label": "Log in with a WhatsApp code", onsubmit: (e) => { e.preventDefault(); void go("/api/v1/auth/otp/verify", { phone: phone.value.trim(), code: code.value.trim() }); } },
        field("Phone number", phone),
        h("button", { type: "button", testid: "otp-request", onclick: () => void requestCode() }, "Send me a code"),
        field("Code", code),
        h("button", { type: "submit", class: "primary", testid: "otp-verify" }, "Log in"))),
    err));
  user.focus();
}
