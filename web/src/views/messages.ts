// Message items: a message, a pending send, a streaming assistant reply.
//
// Every piece of user text goes in through text nodes (h(..., text) / textContent); message
// bodies go through `format.ts` (a Markdown subset built as DOM nodes, never parsed as HTML).
import { h, on, time } from "../dom";
import { formatBody } from "../format";
import { attachmentsOf, type PendingSend } from "../store/messages";
import { tick } from "../store/inbox";
import { mentionsUser } from "../store/rooms";
import type { Stream } from "../client";
import type { Attachment, Message } from "../types";
import { attachmentList, attachmentsSig, attachmentSummary } from "./attachments";
import { reactionBar, reactionPartSig, type ReactionContext, seenLine } from "./reactions";

export interface ItemContext {
  meId: number | null;
  /** The signed-in user's username, to mark their own mentions. */
  meName?: string | null;
  /** WhatsApp delivery status of an outbound message, if any. */
  status: (messageId: number) => string | undefined;
  lookup: (messageId: number) => Message | undefined;
  editingId: number | null;
  confirmDeleteId: number | null;
  onEdit: (m: Message) => void;
  onSaveEdit: (m: Message, body: string) => void;
  onCancel: () => void;
  onDelete: (m: Message) => void;
  onConfirmDelete: (m: Message) => void;
  onRetry: (p: PendingSend) => void;
  onDiscard: (p: PendingSend) => void;
  /** An attachment of `m` failed to load (expired URL?), or its media is to be fetched again. */
  onMediaError?: (m: Message, a: Attachment) => void;
  onMediaRetry?: (m: Message, a: Attachment) => void;
  /** An image was clicked: show the viewer. */
  onOpenImage?: (m: Message, a: Attachment, opener: HTMLElement) => void;
  /** A download link of `m` was clicked. */
  onFollowLink?: (m: Message, a: Attachment, e: MouseEvent) => void;
  /** Reactions and "seen by" under the body (views/reactions.ts). */
  reactions?: ReactionContext;
}

const AUTHOR_FALLBACK: Record<string, string> = { assistant: "Assistant", system: "System", contact: "Contact", user: "Someone" };

export function authorName(m: Message): string {
  return m.author_name || AUTHOR_FALLBACK[m.author_kind] || "Someone";
}

/** `continued`: the same author just wrote before this one; the name and time are not repeated. */
export function messageItem(m: Message, ctx: ItemContext, continued = false): HTMLLIElement {
  const mine = ctx.meId !== null && m.author_id === ctx.meId;
  const status = ctx.status(m.id);
  const editing = ctx.editingId === m.id;
  const li = h("li", {
    testid: "message", "data-id": m.id, "data-seq": m.seq, tabindex: -1,
    class: `msg ${m.author_kind}${mine ? " mine" : ""}${m.deleted_at ? " deleted" : ""}${continued ? " continued" : ""}`,
  });
  const meta = h("div", { class: "meta" },
    h("b", { class: "author" }, authorName(m)), " ",
    h("time", { datetime: m.created_at, title: new Date(m.created_at).toLocaleString() }, time(m.created_at)),
    m.edited_at && !m.deleted_at ? h("span", { class: "edited", title: m.edited_at }, " · edited") : null,
    m.meta?.offline ? h("span", { class: "note" }, " · offline assistant") : null,
    m.meta?.from_phone ? h("span", { class: "note", testid: "from-phone" }, " · sent from the phone") : null,
    status ? statusTick(status) : null);
  li.append(meta);
  if (m.reply_to) li.append(quote(m.reply_to, ctx));
  const files = m.deleted_at ? [] : attachmentsOf(m);
  if (editing) li.append(editBox(m, ctx));
  // a message of files only has no text bubble
  else if (m.deleted_at || m.body || !files.length) li.append(messageBody(m, ctx, li));
  const media = attachmentList(files, {
    onError: ctx.onMediaError && ((a) => ctx.onMediaError?.(m, a)),
    onRetry: ctx.onMediaRetry && ((a) => ctx.onMediaRetry?.(m, a)),
    onOpen: ctx.onOpenImage && ((a, opener) => ctx.onOpenImage?.(m, a, opener)),
    onLink: ctx.onFollowLink && ((a, e) => ctx.onFollowLink?.(m, a, e)),
  });
  if (media) li.append(media);
  if (ctx.reactions && !m.deleted_at) li.append(...[reactionBar(m, ctx.reactions), seenLine(m, ctx.reactions)].filter((e) => e !== null));
  if (mine && !m.deleted_at && !editing) li.append(tools(m, ctx));
  return li;
}

/** The formatted body (docs/WEB.md, "Formatting"); marks `li` when the message mentions the reader. */
function messageBody(m: Message, ctx: ItemContext, li: HTMLElement): HTMLElement {
  if (m.deleted_at) return h("div", { class: "body", testid: "message-body" }, h("i", {}, "message deleted"));
  if (mentionsUser(m, ctx.meId)) li.classList.add("mentions-me");
  const body = h("div", { class: "body md", testid: "message-body" });
  body.append(...formatBody(m.body, { me: ctx.meName ?? null, mentionAll: Boolean(m.meta?.mention_all) }));
  return body;
}

export function pendingItem(p: PendingSend, ctx: ItemContext): HTMLLIElement {
  const note = p.state === "failed" ? `Not sent: ${p.error ?? "error"}` : p.state === "sending" ? "Sending…" : p.error ? `Waiting to retry (${p.error})` : "Waiting for the connection…";
  const files = p.attachments ?? [];
  return h("li", { testid: "pending", "data-client-id": p.client_id, "data-state": p.state, class: `msg mine pending ${p.state}`, "aria-busy": p.state !== "failed" },
    p.body || !files.length ? h("div", { class: "body", testid: "pending-body" }, p.body) : null,
    attachmentList(files),
    h("div", { class: "meta", role: p.state === "failed" ? "alert" : undefined }, note,
      p.state === "failed" ? h("span", { class: "tools shown" },
        h("button", { type: "button", testid: "retry", onclick: () => ctx.onRetry(p) }, "Retry"),
        h("button", { type: "button", testid: "discard", onclick: () => ctx.onDiscard(p) }, "Discard")) : null));
}

export function streamItem(replyId: string, s: Stream): HTMLLIElement {
  return h("li", { testid: "assistant-stream", "data-reply": replyId, class: "msg assistant streaming", "aria-busy": true },
    h("div", { class: "meta" }, h("b", { class: "author" }, "Assistant"), " ", h("span", { class: "note" }, "writing…")),
    h("div", { class: "body" }, s.text));
}

function statusTick(status: string): HTMLElement {
  const t = tick(status);
  return h("span", { class: `tick ${status}`, testid: "wa-status", "data-status": status, title: t.label, "aria-label": t.label }, ` ${t.text}`);
}

function quote(id: number, ctx: ItemContext): HTMLElement {
  const target = ctx.lookup(id);
  const text = target ? (target.deleted_at ? "message deleted" : quoteText(target)) : "an earlier message";
  return h("div", { class: "quote" }, "↪ ", target ? h("b", {}, authorName(target)) : null, target ? ": " : null, text);
}

/** The start of a message's text, or what files it carries when it has no text. */
export function quoteText(m: Message, max = 120): string {
  return m.body ? m.body.slice(0, max) : attachmentSummary(attachmentsOf(m));
}

function tools(m: Message, ctx: ItemContext): HTMLElement {
  if (ctx.confirmDeleteId === m.id) {
    return h("div", { class: "tools shown", role: "group", "aria-label": "Confirm deletion" },
      h("button", { type: "button", testid: "delete-confirm", class: "danger", onclick: () => ctx.onConfirmDelete(m) }, "Delete for everyone"),
      h("button", { type: "button", testid: "delete-cancel", onclick: () => ctx.onCancel() }, "Keep"));
  }
  return h("div", { class: "tools" },
    h("button", { type: "button", testid: "edit", "aria-label": "Edit message", onclick: () => ctx.onEdit(m) }, "Edit"),
    h("button", { type: "button", testid: "delete", "aria-label": "Delete message", onclick: () => ctx.onDelete(m) }, "Delete"));
}

function editBox(m: Message, ctx: ItemContext): HTMLElement {
  const input = h("textarea", { testid: "edit-input", rows: 2, "aria-label": "Edit message" });
  input.value = m.body;
  // the box a user types in is kept when the message re-renders (morph): read it from the
  // event, not from `input`, which is then a box never shown
  const save = (box: HTMLTextAreaElement | null) => {
    const body = (box?.value ?? "").trim();
    if (body && body !== m.body) ctx.onSaveEdit(m, body);
    else ctx.onCancel();
  };
  on<KeyboardEvent>(input, "keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      save(e.currentTarget as HTMLTextAreaElement);
    } else if (e.key === "Escape") {
      e.preventDefault();
      ctx.onCancel();
    }
  });
  queueMicrotask(() => {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  });
  return h("form", { class: "edit", onsubmit: (e) => { e.preventDefault(); save((e.currentTarget as HTMLFormElement).querySelector("textarea")); } },
    input,
    h("div", { class: "tools shown" },
      h("button", { type: "submit", testid: "edit-save" }, "Save"),
      h("button", { type: "button", testid: "edit-cancel", onclick: () => ctx.onCancel() }, "Cancel")));
}

/** What changes the look of a message item; equal signatures reuse the element. */
export function messageSig(m: Message, ctx: ItemContext): string {
  const quoted = m.reply_to ? ctx.lookup(m.reply_to) : undefined;
  return [m.body, m.edited_at, m.deleted_at, m.author_name, ctx.status(m.id), ctx.editingId === m.id, ctx.confirmDeleteId === m.id,
    ctx.meId, ctx.meName, mentionsUser(m, ctx.meId), quoted?.body, quoted?.deleted_at, attachmentsSig(attachmentsOf(m)),
    quoted && attachmentsOf(quoted).length, reactionPartSig(m, ctx.reactions)].join("\u0000");
}
