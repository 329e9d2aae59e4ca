// The labels page: every label of the desk (`GET /api/v1/labels`, staff read it). Supervisors and
// admins create, rename, recolour and delete labels here (`POST`/`PATCH`/`DELETE
// /api/v1/labels`); staff see the list without the controls (the server refuses them anyway).
// A refusal is shown beside the form it came from (errors.ts), with the server's stable code
// (`conflict`: a name taken, `invalid`: a bad name or colour). Kept live by `label:*`.
import type { Change } from "../client";
import { h, KeyedList } from "../dom";
import type { Label } from "../types";
import type { App } from "./app";
import { isDeskManager } from "../roles";
import { labelChip } from "./contact";
import { clearError, showError } from "./errors";

export const DEFAULT_LABEL_COLOR = "#1f883d";

/** The body of PATCH /api/v1/labels/{id}: only what changed (colours compared in lowercase), or null. */
export function labelPatch(l: Pick<Label, "name" | "color">, name: string, color: string): Record<string, string> | null {
  const patch: Record<string, string> = {};
  if (name.trim() && name.trim() !== l.name) patch.name = name.trim();
  if (color.toLowerCase() !== l.color.toLowerCase()) patch.color = color.toLowerCase();
  return Object.keys(patch).length ? patch : null;
}

export class LabelsView {
  readonly el: HTMLElement;
  private readonly list = h("ul", { class: "label-list", testid: "label-list", "aria-label": "Labels" });
  private readonly keyed = new KeyedList(this.list);
  private readonly status = h("p", { class: "muted", role: "status", testid: "labels-status" }, "Loading…");
  private readonly manager: boolean;
  private loaded = false;

  constructor(private readonly app: App) {
    this.manager = isDeskManager(app.me);
    this.el = h("section", { class: "labels-page", "aria-labelledby": "labels-title" },
      h("h2", { id: "labels-title" }, "Labels"),
      this.manager ? this.createForm() : h("p", { class: "muted small", testid: "labels-readonly" }, "Supervisors and admins manage labels."),
      this.status, this.list);
    void app.client.loadLabels().then(() => { this.loaded = true; this.render(); },
      (err: Error) => { this.status.textContent = err.message; });
  }

  update(c: Change): void {
    if (c.kind === "labels" && this.loaded) this.render();
  }

  private render(): void {
    const labels = [...this.app.client.labels.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.status.textContent = labels.length ? "" : "No labels yet.";
    // keyed: a change to one label leaves the others' forms (and what is typed in them) alone
    this.keyed.render(labels.map((l) => ({ key: String(l.id), sig: `${l.name}|${l.color}`, make: () => this.row(l) })));
  }

  private row(l: Label): HTMLElement {
    if (!this.manager) return h("li", { testid: "label-row", "data-label": l.id }, labelChip(l));
    const name = h("input", { testid: "label-edit-name", value: l.name, maxlength: 40, required: true, "aria-label": `Name of ${l.name}` });
    const color = h("input", { testid: "label-edit-color", type: "color", value: l.color, "aria-label": `Colour of ${l.name}` });
    const error = h("p", { class: "error small", testid: "label-row-error", "aria-live": "polite" });
    const save = async () => {
      const patch = labelPatch(l, name.value, color.value);
      if (!patch) return showError(error, new Error("Nothing to change."));
      try {
        const r = await this.app.api.call<{ label: Label }>("PATCH", `/api/v1/labels/${l.id}`, patch);
        this.app.client.onLabel(r.label);
      } catch (err) {
        showError(error, err);
      }
    };
    const remove = async () => {
      try {
        await this.app.api.call("DELETE", `/api/v1/labels/${l.id}`);
        this.app.client.onLabelDeleted(l.id);
      } catch (err) {
        showError(error, err);
      }
    };
    const form = h("form", { class: "row label-edit", "aria-label": `Edit ${l.name}`, onsubmit: (e) => { e.preventDefault(); clearError(error); void save(); } },
      name, color,
      h("button", { type: "submit", testid: "label-save" }, "Save"),
      h("button", { type: "button", class: "danger", testid: "label-delete", "aria-label": `Delete ${l.name}`, onclick: () => { clearError(error); void remove(); } }, "Delete"));
    return h("li", { testid: "label-row", "data-label": l.id }, labelChip(l), form, error);
  }

  private createForm(): HTMLElement {
    const name = h("input", { testid: "label-new-name", maxlength: 40, required: true, "aria-label": "New label's name", placeholder: "Name" });
    const color = h("input", { testid: "label-new-color", type: "color", value: DEFAULT_LABEL_COLOR, "aria-label": "New label's colour" });
    const error = h("p", { class: "error small", testid: "label-create-error", "aria-live": "polite" });
    const form = h("form", { class: "row label-create", "aria-label": "Create a label", onsubmit: async (e) => {
      e.preventDefault();
      clearError(error);
      try {
        const r = await this.app.api.call<{ label: Label }>("POST", "/api/v1/labels", { name: name.value.trim(), color: color.value.toLowerCase() });
        this.app.client.onLabel(r.label);
        name.value = "";
      } catch (err) {
        showError(error, err);
      }
    } }, name, color, h("button", { type: "submit", class: "primary", testid: "label-create" }, "Create label"));
    return h("div", { class: "label-create-wrap" }, form, error);
  }
}
