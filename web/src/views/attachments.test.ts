// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import { msg, uploaded } from "../testing";
import type { Attachment, Message } from "../types";
import { attachmentList, showViewer } from "./attachments";
import { type ItemContext, messageItem, pendingItem } from "./messages";

const HOSTILE = "<img src=x onerror=alert(1)>.png";

function ctx(extra: Partial<ItemContext> = {}): ItemContext {
  const none = () => undefined;
  return {
    meId: 1, status: none, lookup: none, editingId: null, confirmDeleteId: null,
    onEdit: none, onSaveEdit: none, onCancel: none, onDelete: none, onConfirmDelete: none, onRetry: none, onDiscard: none, ...extra,
  };
}

const att = (id: string, name: string, mime: string, extra: Partial<Attachment> = {}): Attachment => ({ ...uploaded(id, name, mime), ...extra });

afterEach(() => {
  document.body.replaceChildren();
});

describe("attachments in messages", () => {
  it("show an image as its thumbnail, sized from the record before it loads", () => {
    const li = messageItem(msg(1, 1, { body: "look", attachments: [att("a1", "cat.png", "image/png", { width: 1280, height: 960 })] }), ctx());
    const img = li.querySelector<HTMLImageElement>("[data-testid=attachment-image]")!;
    expect(img.getAttribute("src")).toBe("https://media.test/a1/thumb?sig=1");
    expect(img.getAttribute("alt")).toBe("cat.png");
    expect([img.getAttribute("width"), img.getAttribute("height")]).toEqual(["320", "240"]);
  });

  it("fall back to the full URL when an image has no thumbnail", () => {
    const li = messageItem(msg(1, 1, { attachments: [att("a1", "cat.gif", "image/gif", { thumb_url: null, width: null, height: null })] }), ctx());
    const img = li.querySelector<HTMLImageElement>("[data-testid=attachment-image]")!;
    expect(img.getAttribute("src")).toBe("https://media.test/a1?sig=1");
    expect(img.hasAttribute("width")).toBe(false);
  });

  it("show an image type browsers cannot display (HEIC from phones) as a file card, not a broken image", () => {
    const li = messageItem(msg(1, 1, { attachments: [att("h", "IMG_0042.HEIC", "image/heic", { thumb_url: null })] }), ctx());
    expect(li.querySelector("[data-testid=attachment-image]")).toBeNull();
    const card = li.querySelector("[data-testid=file-card]")!;
    expect(card.querySelector(".att-icon")?.textContent).toBe("HEIC");
    expect(card.querySelector("[data-testid=file-download]")?.getAttribute("href")).toBe("https://media.test/h?sig=1");
  });

  it("play audio (voice notes too) and video with controls, video without preloading", () => {
    const li = messageItem(msg(1, 1, { body: "", attachments: [att("v", "voice.ogg", "audio/ogg"), att("m", "clip.mp4", "video/mp4")] }), ctx());
    const audio = li.querySelector("audio")!;
    expect(audio.dataset.testid).toBe("attachment-audio");
    expect(audio.hasAttribute("controls")).toBe(true);
    expect(audio.getAttribute("src")).toBe("https://media.test/v?sig=1");
    const video = li.querySelector("video")!;
    expect(video.dataset.testid).toBe("attachment-video");
    expect(video.hasAttribute("controls")).toBe(true);
    expect(video.getAttribute("preload")).toBe("none");
  });

  it("show any other file as a card with a type badge, a readable size and a download link", () => {
    const li = messageItem(msg(1, 1, { attachments: [att("d", "report.pdf", "application/pdf", { size: 3_400_000 })] }), ctx());
    const card = li.querySelector("[data-testid=file-card]")!;
    expect(card.querySelector(".att-icon")?.textContent).toBe("PDF");
    expect(card.querySelector(".att-name")?.textContent).toBe("report.pdf");
    expect(card.textContent).toContain("3.2 MB");
    const link = card.querySelector<HTMLAnchorElement>("[data-testid=file-download]")!;
    expect(link.getAttribute("href")).toBe("https://media.test/d?sig=1");
    expect(link.getAttribute("download")).toBe("report.pdf");
    expect(link.getAttribute("rel")).toContain("noopener");
  });

  it("show a file-only message without an empty text bubble", () => {
    const li = messageItem(msg(1, 1, { body: "", attachments: [att("d", "a.txt", "text/plain")] }), ctx());
    expect(li.querySelector("[data-testid=message-body]")).toBeNull();
    expect(li.querySelector("[data-testid=file-card]")).not.toBeNull();
    const pending = pendingItem({ client_id: "c", room_id: 1, body: "", reply_to: null, created_at: "", state: "sending", attachments: [att("d", "a.txt", "text/plain")] }, ctx());
    expect(pending.querySelector("[data-testid=pending-body]")).toBeNull();
    expect(pending.querySelector("[data-testid=file-card]")).not.toBeNull();
  });

  it("treat a record without `attachments` (an older server) as having none", () => {
    const old = msg(1, 1, { body: "hi" }) as Partial<Message>;
    delete old.attachments;
    const li = messageItem(old as Message, ctx());
    expect(li.querySelector(".attachments")).toBeNull();
    expect(li.querySelector("[data-testid=message-body]")?.textContent).toBe("hi");
    expect(messageItem(msg(2, 2, { attachments: null as unknown as Attachment[] }), ctx()).querySelector(".attachments")).toBeNull();
  });

  it("render hostile file names as text in every kind, the viewer included", () => {
    const kinds = ["image/png", "audio/ogg", "video/mp4", "application/pdf"];
    const li = messageItem(msg(1, 1, { body: "", author_id: 2, attachments: kinds.map((k, i) => att(`h${i}`, HOSTILE, k)) }), ctx());
    expect(li.querySelectorAll("img:not([data-testid=attachment-image])").length).toBe(0);
    expect(li.querySelectorAll("[onerror], script").length).toBe(0);
    expect(li.querySelector("[data-testid=attachment-image]")?.getAttribute("alt")).toBe(HOSTILE);
    expect(li.querySelector("[data-testid=file-card] .att-name")?.textContent).toBe(HOSTILE);
    expect([...li.querySelectorAll("figcaption .att-name")].map((e) => e.textContent)).toEqual([HOSTILE, HOSTILE]);
    const viewer = showViewer(att("h0", HOSTILE, "image/png"), null).el;
    expect(viewer.querySelector("h2")?.textContent).toBe(HOSTILE);
    expect(viewer.querySelectorAll("img").length).toBe(1);
    expect(viewer.querySelectorAll("[onerror], script").length).toBe(0);
  });

  it("never put a non-http URL into src or href", () => {
    const el = attachmentList([att("x", "x.pdf", "application/pdf", { url: "javascript:alert(1)" }), att("y", "y.png", "image/png", { url: "data:text/html,<script>1</script>", thumb_url: null })])!;
    expect(el.querySelectorAll("[href^=javascript], [src^=data], [src^=javascript]").length).toBe(0);
    expect(el.querySelectorAll("[data-testid=attachment-unavailable]").length).toBe(2);
  });

  it("show unavailable WhatsApp media with a retry", () => {
    const retried: string[] = [];
    const li = messageItem(msg(5, 1, { body: "", attachments: [att("w", "photo.jpg", "image/jpeg", { status: "unavailable" })] }),
      ctx({ onMediaRetry: (m, a) => retried.push(`${m.id}:${a.id}`) }));
    const box = li.querySelector("[data-testid=attachment-unavailable]")!;
    expect(box.textContent).toContain("media unavailable");
    expect(li.querySelector("img")).toBeNull();
    box.querySelector<HTMLButtonElement>("[data-testid=attachment-retry]")!.click();
    expect(retried).toEqual(["5:w"]);
  });

  it("show a WhatsApp file still being fetched as pending, not as unavailable", () => {
    const li = messageItem(msg(6, 1, { body: "", attachments: [att("p", "voice.ogg", "audio/ogg", { status: "pending", url: "", thumb_url: null })] }), ctx());
    expect(li.querySelector("[data-testid=attachment-pending]")!.textContent).toContain("fetching media");
    expect(li.querySelector("[data-testid=attachment-unavailable]")).toBeNull();
    expect(li.querySelector("audio")).toBeNull();
  });

  it("report an image that fails to load (expired URL) with its message", () => {
    const failed: string[] = [];
    const li = messageItem(msg(5, 1, { attachments: [att("a", "a.png", "image/png")] }), ctx({ onMediaError: (m, a) => failed.push(`${m.id}:${a.id}`) }));
    li.querySelector("img")!.dispatchEvent(new Event("error"));
    expect(failed).toEqual(["5:a"]);
  });
});

describe("the image viewer", () => {
  function openFromList() {
    const app = document.createElement("div");
    app.id = "app";
    document.body.append(app);
    const li = messageItem(msg(5, 1, { attachments: [att("a", "cat.png", "image/png")] }), ctx({ onOpenImage: (_m, a, opener) => showViewer(a, opener) }));
    app.append(li);
    const opener = li.querySelector<HTMLButtonElement>("[data-testid=attachment-open]")!;
    opener.focus();
    opener.click();
    return { app, opener };
  }

  it("opens as a modal dialog with the full image, the name and a download link, focus inside", () => {
    const { app } = openFromList();
    const viewer = document.querySelector<HTMLElement>("[data-testid=viewer]")!;
    expect(viewer.getAttribute("role")).toBe("dialog");
    expect(viewer.getAttribute("aria-modal")).toBe("true");
    expect(document.getElementById(viewer.getAttribute("aria-labelledby")!)?.textContent).toBe("cat.png");
    expect(viewer.querySelector("[data-testid=viewer-image]")?.getAttribute("src")).toBe("https://media.test/a?sig=1");
    expect(viewer.querySelector("[data-testid=viewer-download]")?.getAttribute("href")).toBe("https://media.test/a?sig=1");
    expect(document.activeElement?.getAttribute("data-testid")).toBe("viewer-close");
    expect(app.hasAttribute("inert")).toBe(true);
  });

  it("closes with Escape and gives the focus back to the image", () => {
    const { app, opener } = openFromList();
    document.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(document.querySelector("[data-testid=viewer]")).toBeNull();
    expect(document.activeElement).toBe(opener);
    expect(app.hasAttribute("inert")).toBe(false);
  });

  it("closes with its close button, and keeps Tab inside while open", () => {
    const { opener } = openFromList();
    const close = document.querySelector<HTMLButtonElement>("[data-testid=viewer-close]")!;
    document.dispatchEvent(new KeyboardEvent("keydown", { key: "Tab", bubbles: true }));
    expect(document.activeElement?.getAttribute("data-testid")).toBe("viewer-download");
    document.dispatchEvent(new KeyboardEvent("keydown", { key: "Tab", bubbles: true }));
    expect(document.activeElement).toBe(close);
    close.click();
    expect(document.querySelector("[data-testid=viewer]")).toBeNull();
    expect(document.activeElement).toBe(opener);
  });

  it("fetches fresh URLs once when the full image fails to load", async () => {
    let calls = 0;
    const v = showViewer(att("a", "cat.png", "image/png"), null, async () => {
      calls++;
      return att("a", "cat.png", "image/png", { url: "https://media.test/a?sig=2" });
    });
    const img = v.el.querySelector<HTMLImageElement>("[data-testid=viewer-image]")!;
    img.dispatchEvent(new Event("error"));
    await Promise.resolve();
    await Promise.resolve();
    expect(img.getAttribute("src")).toBe("https://media.test/a?sig=2");
    img.dispatchEvent(new Event("error"));
    expect(calls).toBe(1);
    expect(v.el.textContent).toContain("could not be loaded");
    v.close();
  });
});
