// The composer's files: the paperclip button (file picker, several files), drag and drop onto the
// room, an image pasted from the clipboard, and the chips above the input (name, size, progress,
// cancel, the server's error in place). The state lives in store/uploads.ts (UploadList).
import { h, type Item, KeyedList } from "../dom";
import { type Chip, humanSize, type Uploader, UploadList } from "../store/uploads";
import type { Upload } from "../types";
import { safeUrl } from "./attachments";

export class FilePicker {
  /** The chips and the limit note; goes above the composer. */
  readonly el: HTMLElement;
  /** The paperclip button and its (hidden) file input; goes into the composer. */
  readonly button: HTMLElement;
  readonly input = h("input", { type: "file", multiple: true, hidden: true, testid: "file-input", tabindex: -1, "aria-hidden": "true" });
  private readonly list: UploadList;
  private readonly chipsEl = h("ul", { class: "chips", testid: "upload-chips", "aria-label": "Attached files" });
  private readonly note = h("p", { class: "upload-note error", testid: "upload-limit", role: "alert" });
  private readonly keyed = new KeyedList(this.chipsEl);
  private readonly bars = new Map<string, HTMLProgressElement>();

  /** `onChange`: chips came, went or finished (the Send button follows). */
  constructor(uploader: Uploader, private readonly onChange: () => void) {
    this.list = new UploadList(uploader, (progressOnly) => (progressOnly ? this.renderProgress() : this.render()));
    this.input.addEventListener("change", () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = ""; // the same file may be picked again
    });
    this.button = h("button", { type: "button", class: "attach", testid: "attach", "aria-label": "Attach files", title: "Attach files", onclick: () => this.input.click() }, paperclip());
    this.el = h("div", { class: "uploads" }, this.note, this.chipsEl);
    this.chipsEl.hidden = true;
  }

  add(files: readonly File[]): void {
    if (!files.length) return;
    this.note.textContent = this.list.add(files) ?? "";
  }

  /** The finished uploads for a send; their chips (and failed ones) go, unfinished ones stay. */
  take(): Upload[] {
    this.note.textContent = "";
    return this.list.take();
  }

  hasReady(): boolean {
    return this.list.ready().length > 0;
  }

  /** Aborts the uploads in flight (the room is left). */
  destroy(): void {
    this.list.clear();
  }

  /** Files dragged onto `target` are attached; the class `dropping` marks it meanwhile. */
  acceptDrops(target: HTMLElement): void {
    let depth = 0; // dragenter/leave fire for every child crossed
    const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes("Files");
    target.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth++;
      target.classList.add("dropping");
    });
    target.addEventListener("dragover", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault(); // allows the drop
      if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    });
    target.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) target.classList.remove("dropping");
    });
    target.addEventListener("drop", (e) => {
      depth = 0;
      target.classList.remove("dropping");
      const files = [...(e.dataTransfer?.files ?? [])];
      if (!files.length) return;
      e.preventDefault(); // the browser would otherwise open the file
      this.add(files);
    });
  }

  /** Files (screenshots, copied images) pasted into `target` are attached; text pastes as ever. */
  acceptPaste(target: HTMLElement): void {
    target.addEventListener("paste", (e: ClipboardEvent) => {
      const data = e.clipboardData;
      if (!data) return;
      const files = [...(data.files ?? [])];
      if (!files.length) for (const item of data.items ?? []) if (item.kind === "file") { const f = item.getAsFile(); if (f) files.push(f); }
      if (!files.length) return;
      // an image copied from a page or document often comes with its text too: keep the text
      if (!data.getData("text/plain")) e.preventDefault();
      this.add(files.map(named));
    });
  }

  private render(): void {
    const chips = this.list.all();
    this.keyed.render(chips.map((c): Item => ({ key: c.key, sig: `${c.state}|${c.error ?? ""}|${c.upload?.thumb_url ?? ""}`, make: () => this.chip(c) })));
    for (const key of this.bars.keys()) if (!chips.some((c) => c.key === key)) this.bars.delete(key);
    this.chipsEl.hidden = chips.length === 0;
    this.renderProgress();
    this.onChange();
  }

  private renderProgress(): void {
    for (const c of this.list.all()) {
      const bar = this.bars.get(c.key);
      if (!bar || c.state !== "uploading") continue;
      bar.max = Math.max(1, c.total);
      bar.value = Math.min(c.loaded, bar.max);
      bar.textContent = `${percent(c)} %`;
      bar.setAttribute("aria-valuetext", `${percent(c)} % of ${humanSize(c.total)}`);
    }
  }

  private chip(c: Chip): HTMLElement {
    const name = c.file.name || "file";
    let bar: HTMLProgressElement | null = null;
    if (c.state === "uploading") {
      bar = h("progress", { testid: "chip-progress", max: Math.max(1, c.total), value: 0, "aria-label": `Uploading ${name}` });
      this.bars.set(c.key, bar);
    } else {
      this.bars.delete(c.key);
    }
    const src = safeUrl(c.upload?.thumb_url);
    const thumb = src ? h("img", { class: "chip-thumb", src, alt: "" }) : null;
    return h("li", { class: `chip ${c.state}`, testid: "chip", "data-state": c.state, "data-key": c.key },
      thumb,
      h("span", { class: "chip-text" },
        h("span", { class: "chip-name", title: name }, name),
        h("small", { class: "muted" }, humanSize(c.file.size))),
      bar,
      c.state === "error" ? h("span", { class: "chip-error error", testid: "chip-error", "data-code": c.code, role: "alert" }, c.error ?? "The upload failed.") : null,
      this.list.retryable(c) ? h("button", { type: "button", class: "chip-retry", testid: "chip-retry", onclick: () => this.list.retry(c.key) }, "Retry") : null,
      h("button", {
        type: "button", class: "chip-cancel", testid: "chip-cancel",
        "aria-label": c.state === "uploading" ? `Cancel the upload of ${name}` : `Remove ${name}`,
        onclick: () => this.list.remove(c.key),
      }, "×"));
  }
}

function percent(c: Chip): number {
  return c.total > 0 ? Math.min(100, Math.floor((c.loaded / c.total) * 100)) : 0;
}

/** Pasted screenshots come as "image.png" at best, or nameless: give them a useful name. */
function named(f: File): File {
  if (f.name && f.name !== "image.png") return f;
  const ext = (f.type.split("/")[1] || "png").replace(/[^a-z0-9]/gi, "").slice(0, 5) || "png";
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  return new File([f], `pasted-${stamp}.${ext}`, { type: f.type, lastModified: f.lastModified });
}

function paperclip(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: "20", height: "20", "aria-hidden": "true" })) svg.setAttribute(k, v);
  const path = document.createElementNS(ns, "path");
  for (const [k, v] of Object.entries({
    d: "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l9.2-9.2a3.7 3.7 0 0 1 5.2 5.2l-9.2 9.2a1.8 1.8 0 0 1-2.6-2.6l8.5-8.5",
    fill: "none", stroke: "currentColor", "stroke-width": "1.8", "stroke-linecap": "round", "stroke-linejoin": "round",
  })) path.setAttribute(k, v);
  svg.append(path);
  return svg;
}
