// Builders shared by the unit tests.
import type { ChatClient } from "./client";
import type { Message, User } from "./types";
import type { App } from "./views/app";
import { ChatView } from "./views/chat";

export function msg(id: number, seq: number, extra: Partial<Message> = {}): Message {
  return {
    id, room_id: 1, seq, author_id: 1, author_kind: "user", author_name: "Ann", body: `m${seq}`, client_id: null,
    reply_to: null, created_at: "2026-11-23T10:00:00Z", edited_at: null, deleted_at: null, meta: {}, ...extra,
  };
}

/** A stand-in for XMLHttpRequest as uploads.ts uses it: records the request, lets a test report
 * upload progress and answer. `FakeXHR.all` holds every request sent. */
export class FakeXHR {
  static all: FakeXHR[] = [];
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  onprogress: (() => void) | null = null;
  status = 0;
  responseText = "";
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: unknown = null;
  aborted = false;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }

  setRequestHeader(k: string, v: string): void {
    this.headers[k] = v;
  }

  send(body: unknown): void {
    this.body = body;
    FakeXHR.all.push(this);
  }

  abort(): void {
    if (this.aborted || this.status) return;
    this.aborted = true;
    this.onabort?.();
  }

  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true } as ProgressEvent);
  }

  respond(status: number, body: unknown): void {
    this.status = status;
    this.responseText = typeof body === "string" ? body : JSON.stringify(body);
    this.onload?.();
  }
}

/** The upload record the server answers for `name`. */
export function uploaded(id: string, name: string, mime = "image/png", extra: Record<string, unknown> = {}) {
  return { id, name, mime, size: 2048, url: `https://media.test/${id}?sig=1`, thumb_url: mime.startsWith("image/") ? `https://media.test/${id}/thumb?sig=1` : null, width: 640, height: 480, ...extra };
}

/** Lets pending promise callbacks run. */
export const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A ChatView of `roomId` on `client`, mounted in the document, with an app shell that does nothing. */
export function mountChat(client: ChatClient, me: User, roomId = 1): ChatView {
  const app = {
    client, me, conn: { connected: true, volatile: () => undefined },
    api: { freshToken: async () => "a1", refresh: async () => false, call: async () => ({}) },
    notice: () => undefined, go: () => undefined,
  } as unknown as App;
  const v = new ChatView(app, roomId);
  client.subscribe((c) => v.update(c));
  document.body.replaceChildren(v.el);
  return v;
}
