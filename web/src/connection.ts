// The Socket.IO connection: authentication, reconnect with backoff, and the connection state
// shown in the banner.
//
// socket.io retries by itself (with growing, jittered delays) when the transport drops. It does
// not retry when the server refuses the connect (expired token, server busy) or disconnects us:
// those are retried here, with the same kind of backoff, after refreshing the token when the
// refusal says `unauthorized`. The access token handed to every (re)connect is fresh: it is
// refreshed first when it expires within a minute.
//
// A socket lives only as long as its access token. While connected, the token is renewed in
// band (`auth {token}`) before it expires and after every refresh (`renew()`); when the server
// ends the session anyway (`session:ended`: expired, revoked, logged out), the token is
// refreshed and the socket reconnects at once, without a banner, and resumes like after any
// reconnect (`onConnect` -> sync). A refresh token the server rejects ends the session.
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { tokenExpiry } from "./api";
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
/** Renew this long before the socket's token expires: inside the API's refresh margin (60 s),
 * so the token asked for then is a refreshed one. */
export const RENEW_BEFORE_MS = 50_000;
/** After a renewal that could not get through (offline, timeout, server busy). */
export const RENEW_RETRY_MS = 5_000;

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
  /** The access token the socket was authorised with last (connect or `auth`). */
  private current: string | null = null;
  private renewTimer: ReturnType<typeof setTimeout> | null = null;
  private renewing: Promise<void> | null = null;
  /** Set by `session:ended`: the server disconnect that follows is not a failure. */
  private ended: string | null = null;
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
        this.opts.token().then(
          (token) => {
            this.current = token;
            cb({ token });
          },
          () => cb({ token: null }),
        );
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
      this.ended = null;
      this.scheduleRenew();
      this.opts.onState({ status: "online" });
      this.opts.onConnect(this.first);
      this.first = false;
    });
    socket.on("disconnect", (reason) => this.onDisconnect(reason));
    socket.on("session:ended", (e: { reason?: string } | undefined) => {
      this.ended = e?.reason ?? "ended";
    });
    socket.on("connect_error", (err) => void this.onConnectError(err as Error & { data?: { code?: string; message?: string } }));
    socket.io.on("reconnect_attempt", (n) => this.retrying(n, null, "Connection lost"));
    for (const [event, fn] of Object.entries(this.opts.handlers)) socket.on(event, fn as (d: unknown) => void);
    globalThis.addEventListener?.("online", this.onOnline);
    globalThis.addEventListener?.("offline", this.onOffline);
  }

  stop(): void {
    this.clearTimer();
    this.clearRenew();
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

  /**
   * Hand the server the current access token (`auth`), so the socket outlives the one it has.
   * Called before the token expires and after every token refresh; a no-op when not connected
   * or when the token did not change. A token the server refuses for this socket (another role
   * now) reconnects with it instead.
   */
  renew(): Promise<void> {
    this.renewing ??= this.doRenew().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
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

  private async doRenew(): Promise<void> {
    this.clearRenew();
    if (!this.socket?.connected) return;
    const token = await this.opts.token().catch(() => null);
    if (!token || !this.socket?.connected) return this.scheduleRenew(RENEW_RETRY_MS);
    if (token === this.current) return this.scheduleRenew();
    const ack = await this.emit<{ expires_at: number }>("auth", { token });
    if (ack.ok) {
      this.current = token;
      return this.scheduleRenew();
    }
    if (ack.error.code === "unauthorized" || ack.error.code === "forbidden") {
      // this socket cannot take it (e.g. the role changed): a new connect with it can
      this.current = null;
      this.reconnect();
      return;
    }
    this.scheduleRenew(RENEW_RETRY_MS); // offline, timeout, busy: try again shortly
  }

  /** The next renewal: shortly before the current token expires, or after `delayMs`. */
  private scheduleRenew(delayMs?: number): void {
    this.clearRenew();
    const exp = this.current ? tokenExpiry(this.current) : null;
    if (delayMs === undefined && exp === null) return;
    const wait = delayMs ?? Math.max(1_000, exp! - Date.now() - RENEW_BEFORE_MS);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = null;
      void this.renew();
    }, wait);
  }

  private clearRenew(): void {
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** Drop this socket and connect again now (a fresh token goes with the new connect). */
  private reconnect(): void {
    const s = this.socket;
    if (!s) return;
    this.clearTimer();
    this.restarting = true;
    s.disconnect();
    this.restarting = false;
    s.connect();
  }

  /** The server ended the session: refresh, then reconnect at once; no banner unless that fails. */
  private async resumeSession(): Promise<void> {
    const ok = await this.opts.refresh();
    if (!this.socket) return;
    if (!ok && !this.opts.hasSession()) return this.opts.onSessionEnded();
    if (!ok) return this.schedule("Cannot reach the server");
    this.socket.connect();
  }

  private onDisconnect(reason: string): void {
    this.clearRenew();
    if (this.restarting || !this.socket) return;
    if (reason === "io client disconnect") return;
    if (reason === "io server disconnect" && this.ended !== null) {
      this.ended = null;
      void this.resumeSession();
      return;
    }
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
