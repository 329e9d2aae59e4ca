// The Socket.IO connection: authentication, reconnect with backoff, and the connection state
// shown in the banner.
//
// socket.io retries by itself (with growing, jittered delays) when the transport drops. It does
// not retry when the server refuses the connect (expired token, server busy) or disconnects us:
// those are retried here, with the same kind of backoff, after refreshing the token when the
// refusal says `unauthorized`. The access token handed to every (re)connect is fresh: it is
// refreshed first when it expires within a minute.
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { Ack } from "./types";

export type ConnState =
  | { status: "connecting" }
  | { status: "online" }
  | { status: "offline" }
  | { status: "retrying"; attempt: number; at: number | null; reason: string };

export interface ConnectionOptions {
  url?: string;
  token: () => Promise<string | null>;
  /** Rotate the tokens after an `unauthorized` refusal; false when the session is over. */
  refresh: () => Promise<boolean>;
  hasSession: () => boolean;
  onState: (s: ConnState) => void;
  onConnect: (first: boolean) => void;
  onSessionEnded: () => void;
  handlers: Record<string, (data: never) => void>;
  factory?: (url: string | undefined, opts: Partial<ManagerOptions & SocketOptions>) => Socket;
}

export const ACK_TIMEOUT_MS = 10_000;

/** Exponential backoff with jitter: 1 s, 2 s, 4 s ... capped, each shortened by up to `jitter`. */
export function backoffDelay(attempt: number, baseMs = 1_000, maxMs = 30_000, jitter = 0.5, random = Math.random): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (1 - jitter * random()));
}

export class Connection {
  private socket: Socket | null = null;
  private first = true;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private restarting = false;
  private readonly onOnline = () => this.retryNow();
  private readonly onOffline = () => this.opts.onState({ status: "offline" });

  constructor(private readonly opts: ConnectionOptions) {}

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  start(): void {
    const make = this.opts.factory ?? io;
    const socket = make(this.opts.url, {
      auth: (cb: (data: object) => void) => {
        this.opts.token().then((token) => cb({ token }), () => cb({ token: null }));
      },
      transports: ["websocket", "polling"],
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 10_000,
      randomizationFactor: 0.5,
      timeout: 10_000,
    });
    this.socket = socket;
    this.opts.onState({ status: "connecting" });
    socket.on("connect", () => {
      this.attempt = 0;
      this.opts.onState({ status: "online" });
      this.opts.onConnect(this.first);
      this.first = false;
    });
    socket.on("disconnect", (reason) => this.onDisconnect(reason));
    socket.on("connect_error", (err) => void this.onConnectError(err as Error & { data?: { code?: string; message?: string } }));
    socket.io.on("reconnect_attempt", (n) => this.retrying(n, null, "Connection lost"));
    for (const [event, fn] of Object.entries(this.opts.handlers)) socket.on(event, fn as (d: unknown) => void);
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("offline", this.onOffline);
  }

  stop(): void {
    this.clearTimer();
    globalThis.removeEventListener?.("online", this.onOnline);
    globalThis.removeEventListener?.("offline", this.onOffline);
    const s = this.socket;
    this.socket = null;
    s?.removeAllListeners();
    s?.io.removeAllListeners();
    s?.disconnect();
  }

  /** Skip the wait: reconnect now (the banner's button, the browser coming back online). */
  retryNow(): void {
    const s = this.socket;
    if (!s || s.connected) return;
    this.clearTimer();
    this.restarting = true;
    s.disconnect(); // stops socket.io's own backoff timer
    this.restarting = false;
    s.connect();
  }

  /** Emits with an ack; never rejects: local failures come back as `offline` / `timeout` errors. */
  emit<T>(event: string, data: unknown, timeoutMs = ACK_TIMEOUT_MS): Promise<Ack<T>> {
    const s = this.socket;
    if (!s?.connected) return Promise.resolve({ ok: false, error: { code: "offline", message: "Not connected." } });
    return new Promise((resolve) => {
      s.timeout(timeoutMs).emit(event, data, (err: Error | null, ack: Ack<T>) => {
        if (err) resolve({ ok: false, error: { code: "timeout", message: "The server did not answer in time." } });
        else resolve(ack ?? { ok: false, error: { code: "internal", message: "Empty answer." } });
      });
    });
  }

  /** Fire and forget (typing): no ack awaited, nothing queued while offline. */
  volatile(event: string, data: unknown): void {
    if (this.socket?.connected) this.socket.volatile.emit(event, data);
  }

  private onDisconnect(reason: string): void {
    if (this.restarting || !this.socket) return;
    if (reason === "io client disconnect") return;
    if (reason === "io server disconnect") this.schedule("Disconnected by the server");
    else this.retrying(1, null, "Connection lost");
  }

  private async onConnectError(err: Error & { data?: { code?: string; message?: string } }): Promise<void> {
    const s = this.socket;
    if (!s) return;
    if (s.active) {
      // a transport failure: socket.io retries by itself
      this.retrying(Math.max(1, this.attempt), null, "Cannot reach the server");
      return;
    }
    const { code, message } = refusal(err);
    if (code === "unauthorized") {
      const ok = await this.opts.refresh();
      if (!ok && !this.opts.hasSession()) return this.opts.onSessionEnded();
    } else if (code === "forbidden") {
      return this.opts.onSessionEnded();
    }
    this.schedule(message ? `The server refused the connection (${message})` : "The server refused the connection");
  }

  private schedule(reason: string): void {
    this.clearTimer();
    this.attempt += 1;
    const delay = backoffDelay(this.attempt);
    this.retrying(this.attempt, Date.now() + delay, reason);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.socket?.connect();
    }, delay);
  }

  private retrying(attempt: number, at: number | null, reason: string): void {
    this.attempt = Math.max(this.attempt, attempt);
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this.opts.onState(offline ? { status: "offline" } : { status: "retrying", attempt: this.attempt, at, reason });
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * The code and message of a refused connect. The contract puts `{code, message}` in the error's
 * `data`; python-socketio sends a single dict argument as the message text instead
 * (`"{'code': 'unauthorized', ...}"`), so that form is read too.
 */
export function refusal(err: Error & { data?: { code?: string; message?: string } }): { code: string | null; message: string | null } {
  if (err.data?.code) return { code: err.data.code, message: err.data.message ?? null };
  const code = /['"]code['"]\s*:\s*['"]([a-z_]+)['"]/.exec(err.message ?? "")?.[1] ?? null;
  const message = /['"]message['"]\s*:\s*['"]([^'"]*)['"]/.exec(err.message ?? "")?.[1] ?? null;
  return { code, message: message ?? (code ? null : err.message || null) };
}

/** The banner's words for a connection state ("" = no banner). */
export function bannerText(s: ConnState, now = Date.now()): string {
  switch (s.status) {
    case "online":
      return "";
    case "connecting":
      return "Connecting…";
    case "offline":
      return "You are offline. What you write is kept and sent when the connection is back.";
    case "retrying": {
      const wait = s.at === null ? "" : ` in ${Math.max(1, Math.ceil((s.at - now) / 1000))} s`;
      return `${s.reason}. Reconnecting${wait}…`;
    }
  }
}
