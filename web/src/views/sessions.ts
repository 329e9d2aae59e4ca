// Admin: WhatsApp Web (linked-device) sessions. Create one, watch its QR code refresh live
// (wa:session), or ask for a pairing code for a phone number; see its status, linked number and
// last error; log out, start again, delete. The QR code comes drawn by the server as SVG and is
// shown as an image (never parsed into the page).
import { fill, h, say } from "../dom";
import type { WaSessionEvent } from "../types";
import type { App } from "./app";

export interface WaSession {
  id: number;
  name: string;
  status: string;
  jid: string | null;
  phone: string | null;
  last_error: string | null;
}

const STATUS_TEXT: Record<string, string> = {
  new: "starting", connecting: "connecting", qr: "scan the QR code", pairing_code: "type the code on the phone",
  connected: "linked", disconnected: "disconnected", logged_out: "logged out", qr_expired: "QR code expired",
};

export function sessionsSection(app: App, status: HTMLElement): HTMLElement {
  const list = h("ul", { class: "accounts", testid: "wa-sessions" });
  const rows = new Map<number, { s: WaSession; el: HTMLElement; qr: HTMLElement; code: HTMLElement }>();
  const act = async (fn: () => Promise<unknown>, done: string) => {
    try {
      await fn();
      say(status, done);
      await load();
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  const row = (s: WaSession) => {
    const qr = h("div", { class: "qr", testid: "wa-session-qr" });
    const code = h("output", { class: "pairing-code", testid: "wa-session-code" });
    const phone = h("input", { type: "tel", testid: "wa-session-phone", placeholder: "+49 151 12345678", "aria-label": "Phone number to link" });
    const pair = h("form", { class: "row", "aria-label": "Link with a pairing code", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await app.api.call<{ pairing_code: string }>("POST", `/api/v1/whatsapp/sessions/${s.id}/pairing-code`, { phone: phone.value });
        fill(code, `Type ${r.pairing_code} on the phone: WhatsApp → Linked devices → Link with phone number.`);
      } catch (err) {
        say(status, (err as Error).message);
      }
    } }, phone, h("button", { type: "submit", testid: "wa-session-pair" }, "Get a pairing code"));
    const ended = s.status === "logged_out" || s.status === "qr_expired";
    const el = h("li", { "data-session": s.id },
      h("b", {}, s.name), " ",
      h("span", { class: `pill ${s.status}`, testid: "wa-session-status" }, STATUS_TEXT[s.status] ?? s.status),
      s.phone ? h("span", {}, ` +${s.phone}`) : null,
      s.last_error ? h("small", { class: "muted", testid: "wa-session-error" }, ` ${s.last_error}`) : null,
      qr, code, s.status === "connected" || ended ? null : pair,
      h("div", { class: "row" },
        ended ? h("button", { type: "button", testid: "wa-session-start", onclick: () => void act(() => app.api.call("POST", `/api/v1/whatsapp/sessions/${s.id}/start`), `${s.name} starts again.`) }, "Start again")
          : h("button", { type: "button", testid: "wa-session-logout", onclick: () => void act(() => app.api.call("POST", `/api/v1/whatsapp/sessions/${s.id}/logout`), `${s.name} was logged out.`) }, "Log out"),
        h("button", { type: "button", class: "danger", testid: "wa-session-delete", onclick: () => void act(() => app.api.call("DELETE", `/api/v1/whatsapp/sessions/${s.id}`), `${s.name} was deleted.`) }, "Delete")));
    rows.set(s.id, { s, el, qr, code });
    return el;
  };
  const load = async () => {
    try {
      const r = await app.api.call<{ sessions: WaSession[] }>("GET", "/api/v1/whatsapp/sessions");
      rows.clear();
      fill(list, ...r.sessions.map(row), r.sessions.length ? null : h("li", { class: "muted" }, "No linked phone yet."));
    } catch (err) {
      say(status, (err as Error).message);
    }
  };
  const onEvent = (e: WaSessionEvent) => {
    const r = rows.get(e.session_id);
    if (!r) return void load();
    if (e.kind === "qr" && e.qr_svg) {
      fill(r.qr, h("img", { src: `data:image/svg+xml;base64,${btoa(e.qr_svg)}`, alt: "QR code: scan it in WhatsApp → Linked devices", testid: "wa-session-qr-img" }));
      const pill = r.el.querySelector("[data-testid=wa-session-status]");
      if (pill) pill.textContent = STATUS_TEXT.qr;
    } else if (e.kind === "pairing_code" && e.pairing_code) {
      fill(r.code, `Type ${e.pairing_code} on the phone.`);
    } else {
      void load();
    }
  };
  app.waSessionListeners.add(onEvent);
  const name = h("input", { name: "name", testid: "wa-session-name", required: true, placeholder: "Front desk phone" });
  const form = h("form", { class: "account-form", "aria-label": "Link a phone (WhatsApp Web)", onsubmit: async (e) => {
    e.preventDefault();
    await act(() => app.api.call("POST", "/api/v1/whatsapp/sessions", { name: name.value.trim() }), "The session starts; its QR code appears here.");
    form.reset();
  } }, h("label", { class: "field" }, h("span", {}, "Name"), name), h("button", { type: "submit", class: "primary", testid: "wa-session-add" }, "Link a phone"));
  void load();
  const section = h("section", { "aria-labelledby": "admin-wa-web" }, h("h2", { id: "admin-wa-web" }, "WhatsApp Web (linked phones)"),
    h("p", { class: "muted small" }, "Not Meta's official API: WhatsApp may restrict a number used this way. The Cloud API numbers above are the recommended channel."),
    list, form);
  // stop listening once the admin page is gone
  const watch = new MutationObserver(() => { if (!section.isConnected) { app.waSessionListeners.delete(onEvent); watch.disconnect(); } });
  queueMicrotask(() => { if (section.parentElement) watch.observe(document.body, { childList: true, subtree: true }); });
  return section;
}
