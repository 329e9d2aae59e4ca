// REST client and session tokens.
//
// The refresh token lives in localStorage (it survives reloads); the access token only in memory.
// Refresh tokens rotate: every refresh returns a new one, which replaces the stored one, and the
// old one is dead. Refreshes are single-flight inside a tab and serialised across tabs with the
// Web Locks API where the browser has it, each one reading the newest stored token, so two tabs
// never present the same refresh token twice (the server would take that for a stolen token).
import type { User } from "./types";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  user?: User;
}

export interface ApiOptions {
  base?: string;
  fetch?: typeof fetch;
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem"> | null;
  now?: () => number;
  /** Called once when the server rejects the refresh token: the session is over. */
  onSessionEnded?: () => void;
}

export const REFRESH_KEY = "chat.refresh_token";
export const REQUEST_TIMEOUT_MS = 15_000;
/** Refresh this long before the access token expires (tokens live 15 min). */
export const REFRESH_MARGIN_MS = 60_000;

type RefreshOutcome = "ok" | "rejected" | "unavailable";

/** The `exp` claim of a JWT in ms since the epoch, or null when it cannot be read. */
export function tokenExpiry(token: string): number | null {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

interface RawBody { raw: Blob | string; type: string }

function isRaw(body: unknown): body is RawBody {
  return typeof body === "object" && body !== null && "raw" in body && "type" in body && Object.keys(body).length === 2;
}

export class Api {
  accessToken: string | null = null;
  user: User | null = null;
  onSessionEnded: (() => void) | undefined;
  private readonly base: string;
  private readonly fetcher: typeof fetch;
  private readonly storage: ApiOptions["storage"];
  private readonly now: () => number;
  private inflight: Promise<RefreshOutcome> | null = null;
  private readonly refreshed = new Set<() => void>();

  constructor(opts: ApiOptions = {}) {
    this.base = opts.base ?? "";
    this.fetcher = opts.fetch ?? ((...a) => fetch(...a));
    this.storage = opts.storage === undefined ? (globalThis.localStorage ?? null) : opts.storage;
    this.now = opts.now ?? Date.now;
    this.onSessionEnded = opts.onSessionEnded;
  }

  get refreshToken(): string | null {
    return this.storage?.getItem(REFRESH_KEY) ?? null;
  }

  setTokens(t: Tokens): void {
    this.accessToken = t.access_token;
    this.storage?.setItem(REFRESH_KEY, t.refresh_token);
    if (t.user) this.user = t.user;
  }

  clearSession(): void {
    this.accessToken = null;
    this.user = null;
    this.storage?.removeItem(REFRESH_KEY);
  }

  /** Rotates the refresh token. False when there is no session or the server is unreachable. */
  async refresh(): Promise<boolean> {
    if (!this.refreshToken) return false;
    this.inflight ??= this.withLock(() => this.doRefresh()).finally(() => {
      this.inflight = null;
    });
    const outcome = await this.inflight;
    return outcome === "ok";
  }

  /** Calls `fn` after every refresh that brought a new access token (the socket renews with
   * it); returns the function that stops it. */
  onRefreshed(fn: () => void): () => void {
    this.refreshed.add(fn);
    return () => this.refreshed.delete(fn);
  }

  /** An access token valid for at least REFRESH_MARGIN_MS more, refreshing first when needed. */
  async freshToken(): Promise<string | null> {
    const exp = this.accessToken ? tokenExpiry(this.accessToken) : null;
    if (this.accessToken && (exp === null || exp - this.now() > REFRESH_MARGIN_MS)) return this.accessToken;
    await this.refresh();
    return this.accessToken;
  }

  /** A JSON request to chat-server (a path) or another origin (a full URL, e.g. chat-archive). */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.send(method, path, body);
    if (r.status === 204) return undefined as T;
    const data = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (!r.ok) throw new ApiError(r.status, data.error?.code ?? "error", data.error?.message ?? (r.statusText || `HTTP ${r.status}`), data.error?.details);
    return data as T;
  }

  /** A request whose body is not JSON (a CSV upload), answered with JSON. */
  async callBody<T>(method: string, path: string, body: Blob | string, contentType: string): Promise<T> {
    const r = await this.send(method, path, { raw: body, type: contentType });
    const data = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (!r.ok) throw new ApiError(r.status, data.error?.code ?? "error", data.error?.message ?? (r.statusText || `HTTP ${r.status}`), data.error?.details);
    return data as T;
  }

  /** The raw response of an authenticated request (downloads); throws ApiError when not 2xx. */
  async fetchRaw(path: string): Promise<Response> {
    const r = await this.send("GET", path);
    if (!r.ok) {
      const data = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      throw new ApiError(r.status, data.error?.code ?? "error", data.error?.message ?? `HTTP ${r.status}`);
    }
    return r;
  }

  async login(path: string, body: unknown): Promise<User> {
    const data = await this.call<Tokens & { user: User }>("POST", path, body);
    this.setTokens(data);
    return data.user;
  }

  async logout(): Promise<void> {
    const token = this.refreshToken;
    try {
      if (token && this.accessToken) await this.call("POST", "/api/v1/auth/logout", { refresh_token: token });
    } finally {
      this.clearSession();
    }
  }

  // --- internals ------------------------------------------------------------------------------

  private async send(method: string, path: string, body?: unknown, retried = false): Promise<Response> {
    const headers: Record<string, string> = {};
    const raw = isRaw(body) ? body : null;
    if (body !== undefined) headers["Content-Type"] = raw ? raw.type : "application/json";
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    const url = /^https?:\/\//.test(path) ? path : `${this.base}${path}`;
    let r: Response;
    try {
      r = await this.fetcher(url, {
        method,
        headers,
        body: raw ? raw.raw : body === undefined ? undefined : JSON.stringify(body),
        signal: timeoutSignal(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      throw new ApiError(0, "unavailable", navigatorOffline() ? "You are offline." : `The server did not answer (${(e as Error).name}).`);
    }
    // 401 = the access token expired or was revoked: rotate once and replay the request
    if (r.status === 401 && !retried && this.refreshToken && !path.includes("/auth/")) {
      if (await this.refresh()) return this.send(method, path, body, true);
    }
    return r;
  }

  private async doRefresh(again = true): Promise<RefreshOutcome> {
    const token = this.refreshToken; // read inside the lock: another tab may have rotated it
    if (!token) return "rejected";
    let r: Response;
    try {
      r = await this.fetcher(`${this.base}/api/v1/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
        signal: timeoutSignal(REQUEST_TIMEOUT_MS),
      });
    } catch {
      return "unavailable"; // keep the token: the network, not the session, failed
    }
    if (r.ok) {
      this.setTokens((await r.json()) as Tokens);
      for (const fn of this.refreshed) fn();
      return "ok";
    }
    if (r.status >= 500 || r.status === 429) return "unavailable";
    // a tab without Web Locks rotated it meanwhile: ours was merely stale, try the newest once
    if (again && this.refreshToken && this.refreshToken !== token) return this.doRefresh(false);
    this.clearSession();
    this.onSessionEnded?.();
    return "rejected";
  }

  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    return locks ? (locks.request("chat.refresh", fn) as Promise<T>) : fn();
  }
}

function timeoutSignal(ms: number): AbortSignal | undefined {
  return typeof AbortSignal !== "undefined" && "timeout" in AbortSignal ? AbortSignal.timeout(ms) : undefined;
}

function navigatorOffline(): boolean {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}
