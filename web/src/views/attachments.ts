// The files of a message: images as thumbnails (click opens the viewer), audio and video players,
// a card with a download link for anything else, and "media unavailable" for WhatsApp media the
// server could not fetch.
//
// File names are user input: they only ever become text nodes, `alt`/`aria-label` attributes or
// the `download` attribute (setAttribute, never markup). URLs come from the server; anything but
// http(s)/blob is not put into `src`/`href` at all.
import { h, on } from "../dom";
import { humanSize } from "../store/uploads";
import type { Attachment } from "../types";

export interface MediaHandlers {
  /** An image (or player) failed to load: its signed URL may have expired. */
  onError?: (a: Attachment) => void;
  /** The user asked to try unavailable media again. */
  onRetry?: (a: Attachment) => void;
  /** The user opened an image; `opener` gets the focus back when the viewer closes. */
  onOpen?: (a: Attachment, opener: HTMLElement) => void;
  /** A download link was clicked (its URL may be old: the handler may renew it first). */
  onLink?: (a: Attachment, e: MouseEvent) => void;
}

/** Thumbnails fit in this box (CSS px); the record's width/height keep the space reserved. */
const THUMB_MAX_W = 320;
const THUMB_MAX_H = 240;

export type AttachmentKind = "image" | "audio" | "video" | "file" | "pending" | "unavailable";

/** Image types browsers display. Others the server accepts (HEIC/HEIF, phones' photo format) get
 * no thumbnail and would be a broken image: they are files with a Download link. */
const DISPLAYABLE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif"]);

export function attachmentKind(a: Attachment): AttachmentKind {
  if (a.status === "pending") return "pending";
  if (a.status === "unavailable" || safeUrl(a.url) === null) return "unavailable";
  const mime = (a.mime || "").toLowerCase();
  if (mime.startsWith("image/")) return DISPLAYABLE_IMAGES.has(mime) ? "image" : "file";
  if (mime.startsWith("audio/")) return "audio";
  if (mime.startsWith("video/")) return "video";
  return "file";
}

/** The URL if it is one a page may load (http, https, blob; relative resolves to ours), else null. */
export function safeUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const base = typeof location !== "undefined" && /^https?:/.test(location.href) ? location.href : "http://localhost/";
    const u = new URL(url, base);
    return u.protocol === "http:" || u.protocol === "https:" || u.protocol === "blob:" ? url : null;
  } catch {
    return null;
  }
}

/** The attachments block of a message, or null when it has none. */
export function attachmentList(list: readonly Attachment[], handlers: MediaHandlers = {}): HTMLElement | null {
  if (!list.length) return null;
  return h("div", { class: "attachments" }, ...list.map((a) => attachmentItem(a, handlers)));
}

export function attachmentItem(a: Attachment, handlers: MediaHandlers): HTMLElement {
  switch (attachmentKind(a)) {
    case "image":
      return imageItem(a, handlers);
    case "audio": {
      const player = h("audio", { controls: true, preload: "none", src: safeUrl(a.url), testid: "attachment-audio", "aria-label": a.name });
      on(player, "error", () => handlers.onError?.(a));
      return h("figure", { class: "att att-audio", "data-attachment": a.id }, player, caption(a, handlers));
    }
    case "video": {
      const player = h("video", { controls: true, preload: "none", src: safeUrl(a.url), testid: "attachment-video", "aria-label": a.name, ...fitted(a) });
      on(player, "error", () => handlers.onError?.(a));
      return h("figure", { class: "att att-video", "data-attachment": a.id }, player, caption(a, handlers));
    }
    case "pending":
      // a WhatsApp contact's file the server is still fetching: message:updated brings it
      return h("div", { class: "att att-pending", testid: "attachment-pending", "data-attachment": a.id, role: "status", "aria-label": a.name || "media" },
        h("span", { class: "att-icon", "aria-hidden": "true" }, "…"),
        h("span", { class: "att-text" }, h("span", { class: "att-name" }, a.name || "Media"), h("small", {}, "fetching media…")));
    case "unavailable":
      return h("div", { class: "att att-unavailable", testid: "attachment-unavailable", "data-attachment": a.id, role: "group", "aria-label": a.name || "media" },
        h("span", { class: "att-icon", "aria-hidden": "true" }, "!"),
        h("span", { class: "att-text" }, h("span", { class: "att-name" }, a.name || "Media"), h("small", {}, "media unavailable")),
        handlers.onRetry ? h("button", { type: "button", testid: "attachment-retry", onclick: () => handlers.onRetry?.(a) }, "Retry") : null);
    default:
      return fileCard(a, handlers);
  }
}

function imageItem(a: Attachment, handlers: MediaHandlers): HTMLElement {
  const img = h("img", { testid: "attachment-image", src: safeUrl(a.thumb_url) ?? safeUrl(a.url), alt: a.name, loading: "lazy", decoding: "async", ...fitted(a) });
  on(img, "error", () => handlers.onError?.(a));
  const open = h("button", { type: "button", class: "att-open", testid: "attachment-open", "aria-label": `Open image ${a.name}`, title: a.name }, img);
  // the button shown may be an earlier one kept by a re-render (morph): the event names it
  on(open, "click", (e) => handlers.onOpen?.(a, e.currentTarget as HTMLElement));
  return h("figure", { class: "att att-image", "data-attachment": a.id }, open);
}

function fileCard(a: Attachment, handlers: MediaHandlers): HTMLElement {
  return h("div", { class: "att att-file", testid: "file-card", "data-attachment": a.id },
    h("span", { class: "att-icon", "aria-hidden": "true" }, typeLabel(a)),
    h("span", { class: "att-text" }, h("span", { class: "att-name", title: a.name }, a.name), h("small", {}, humanSize(a.size))),
    downloadLink(a, "Download", "file-download", handlers.onLink));
}

function caption(a: Attachment, handlers: MediaHandlers): HTMLElement {
  return h("figcaption", {}, h("span", { class: "att-name" }, a.name), " ", h("small", {}, humanSize(a.size)), " ", downloadLink(a, "Download", "attachment-download", handlers.onLink));
}

export function downloadLink(a: Attachment, text: string, testid: string, onLink?: MediaHandlers["onLink"]): HTMLAnchorElement {
  const link = h("a", { href: safeUrl(a.url), download: a.name || true, target: "_blank", rel: "noopener noreferrer", testid, "aria-label": `Download ${a.name}` }, text);
  if (onLink) on<MouseEvent>(link, "click", (e) => onLink(a, e));
  return link;
}

/** The record's size scaled into the thumbnail box, so the space is reserved before it loads. */
function fitted(a: Attachment): { width?: number; height?: number } {
  if (!a.width || !a.height || a.width <= 0 || a.height <= 0) return {};
  const scale = Math.min(1, THUMB_MAX_W / a.width, THUMB_MAX_H / a.height);
  return { width: Math.max(1, Math.round(a.width * scale)), height: Math.max(1, Math.round(a.height * scale)) };
}

const LABELS: [RegExp, string][] = [
  [/pdf/, "PDF"],
  [/zip|tar|gzip|x-7z|rar|compressed/, "ZIP"],
  [/csv/, "CSV"],
  [/spreadsheet|excel/, "XLS"],
  [/presentation|powerpoint/, "PPT"],
  [/word|opendocument\.text|rtf/, "DOC"],
  [/^text\//, "TXT"],
  [/json|xml|javascript/, "CODE"],
];

/** A short badge for the type (emoji and icon fonts are not everywhere). */
export function typeLabel(a: Attachment): string {
  const mime = (a.mime || "").toLowerCase();
  for (const [re, label] of LABELS) if (re.test(mime)) return label;
  const ext = /\.([a-z0-9]{1,4})$/i.exec(a.name || "")?.[1];
  return ext ? ext.toUpperCase() : "FILE";
}

/** One line about the files, where a message is quoted without its body ("[2 files]"). */
export function attachmentSummary(list: readonly Attachment[]): string {
  if (!list.length) return "";
  if (list.length === 1) return `[${list[0].name || "file"}]`;
  return `[${list.length} files]`;
}

/** What changes the look of the attachments (the URLs too: fresh ones replace expired ones). */
export function attachmentsSig(list: readonly Attachment[]): string {
  return list.map((a) => `${a.id}:${a.status ?? ""}:${a.url}:${a.thumb_url ?? ""}`).join(",");
}

// --- the viewer -------------------------------------------------------------------------------

let openViewer: { close: () => void } | null = null;

/**
 * Shows an image full size in a modal dialog: the file name, a download link, a close button.
 * Focus moves into it and stays there (Tab cycles), Escape or a click outside the image closes it,
 * and focus returns to `opener`. The rest of the app is inert meanwhile. `refresh` is called once
 * when the full image fails to load and may give the attachment with fresh URLs.
 */
export function showViewer(a: Attachment, opener: HTMLElement | null, refresh?: () => Promise<Attachment | null>): { close: () => void; el: HTMLElement } {
  openViewer?.close();
  const titleId = `viewer-title-${Math.random().toString(36).slice(2, 8)}`;
  const img = h("img", { testid: "viewer-image", src: safeUrl(a.url), alt: a.name });
  const status = h("p", { class: "viewer-status", role: "status" });
  const download = downloadLink(a, "Download", "viewer-download");
  const closeBtn = h("button", { type: "button", class: "viewer-close", testid: "viewer-close", "aria-label": "Close" }, "×");
  const dialog = h("div", { class: "viewer", testid: "viewer", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, tabindex: -1 },
    h("div", { class: "viewer-bar" },
      h("h2", { id: titleId, class: "viewer-title" }, a.name),
      h("span", { class: "muted" }, humanSize(a.size)),
      download, closeBtn),
    h("div", { class: "viewer-body" }, img, status));
  let retried = false;
  img.addEventListener("error", () => {
    if (retried || !refresh) return void (status.textContent = "The image could not be loaded.");
    retried = true;
    void refresh().then((fresh) => {
      const url = fresh ? safeUrl(fresh.url) : null;
      if (url && url !== img.getAttribute("src")) {
        img.src = url;
        download.href = url;
      } else {
        status.textContent = "The image could not be loaded.";
      }
    });
  });
  const app = document.getElementById("app");
  const hadInert = app?.hasAttribute("inert") ?? false;
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.preventDefault();
      close();
    } else if (e.key === "Tab") {
      const stops = [download, closeBtn].filter((el) => el.isConnected && !(el as HTMLElement).hidden);
      const i = stops.indexOf(document.activeElement as HTMLAnchorElement & HTMLButtonElement);
      e.preventDefault();
      const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
      stops[next]?.focus();
    }
  };
  const close = () => {
    if (!dialog.isConnected) return;
    dialog.remove();
    document.removeEventListener("keydown", onKey, true);
    if (app && !hadInert) app.removeAttribute("inert");
    if (openViewer === handle) openViewer = null;
    // the list may have re-rendered the image meanwhile (fresh URLs): focus its new button
    const target = opener?.isConnected ? opener
      : [...document.querySelectorAll<HTMLElement>("[data-attachment]")].find((el) => el.dataset.attachment === a.id)?.querySelector<HTMLElement>(".att-open");
    target?.focus();
  };
  const handle = { close, el: dialog };
  closeBtn.addEventListener("click", close);
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog || (e.target as Element).classList?.contains("viewer-body")) close();
  });
  document.addEventListener("keydown", onKey, true);
  document.body.append(dialog);
  app?.setAttribute("inert", "");
  openViewer = handle;
  closeBtn.focus();
  return handle;
}
