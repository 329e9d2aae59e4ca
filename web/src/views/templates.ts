// The template picker of a WhatsApp conversation whose 24-hour window is closed: the number's
// approved templates (as last synced), one field per parameter (the header's, then the
// body's), and the send (`POST /api/v1/wa/conversations/{id}/template`). The server checks the
// count again and answers what it stored; the message arrives in the room like any other.
import { fill, h, say } from "../dom";
import type { Conversation } from "../types";
import type { App } from "./app";

export interface WaTemplate {
  name: string;
  language: string;
  status: string;
  param_counts: { header: number; body: number };
}

/** The labels of a template's parameter fields, in the order the server takes them. */
export function parameterLabels(t: Pick<WaTemplate, "param_counts">): string[] {
  const out: string[] = [];
  for (let i = 1; i <= t.param_counts.header; i++) out.push(`Header {{${i}}}`);
  for (let i = 1; i <= t.param_counts.body; i++) out.push(`Body {{${i}}}`);
  return out;
}

export function templatePicker(app: App, c: Conversation): HTMLElement {
  const status = h("span", { class: "small", role: "status", testid: "template-status" });
  const select = h("select", { testid: "template-select", "aria-label": "Template" },
    h("option", { value: "" }, "Send a template…"));
  const fields = h("span", { testid: "template-params" });
  let templates: WaTemplate[] = [];
  select.addEventListener("focus", () => void (async () => {
    try {
      const r = await app.api.call<{ templates: WaTemplate[] }>("GET", `/api/v1/wa/accounts/${c.account_id}/templates`);
      templates = r.templates.filter((t) => t.status === "APPROVED");
      fill(select, h("option", { value: "" }, templates.length ? "Send a template…" : "No approved templates (sync them)"),
        ...templates.map((t, i) => h("option", { value: String(i) }, `${t.name} (${t.language})`)));
    } catch (err) {
      say(status, (err as Error).message);
    }
  })(), { once: true });
  select.addEventListener("change", () => {
    const t = templates[Number(select.value)];
    fill(fields, ...(t ? parameterLabels(t).map((label) => h("input", { "aria-label": label, placeholder: label, required: true })) : []));
  });
  return h("form", { class: "row", testid: "template-form", "aria-label": "Send a template", onsubmit: (e) => {
    e.preventDefault();
    const t = templates[Number(select.value)];
    if (!t || select.value === "") return;
    const parameters = [...fields.querySelectorAll("input")].map((i) => i.value.trim());
    void app.api.call("POST", `/api/v1/wa/conversations/${c.room_id}/template`, { name: t.name, language: t.language, parameters })
      .then(() => { say(status, "Template sent"); fill(fields); select.value = ""; })
      .catch((err: Error) => say(status, err.message));
  } }, select, fields, h("button", { type: "submit", testid: "template-send" }, "Send"), status);
}
