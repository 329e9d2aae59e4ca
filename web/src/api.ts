// REST client: bearer auth, transparent refresh on 401 (refresh tokens rotate: always keep the new one).
import type { User } from "./types";

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) { super(message); }
}

const REFRESH_KEY = "chat.refresh_token";

export class Api {
  accessToken: string | null = null;
  user: User | null = null;
  private refreshing: Promise<boolean> | null = null;

  constructor(private base = "", private fetcher: typeof fetch = (...a) => fetch(...a), private storage: Storage | null = globalThis.localStorage ?? null) {}

  get refreshToken(): string | null { return this.storage?.getItem(REFRESH_KEY) ?? null; }

  setTokens(t: { access_token: string; refresh_token: string; user?: User }): void {
    this.accessToken = t.access_token;
    this.storage?.setItem(REFRESH_KEY, t.refresh_token);
    if (t.user) this.user = t.user;
  }

  clear(): void {
    this.accessToken = null;
    this.user = null;
    this.storage?.removeItem(REFRESH_KEY);
  }

  async refresh(): Promise<boolean> {
    if (!this.refreshToken) return false;
    this.refreshing ??= (async () => {
      try {
        const r = await this.fetcher(`${this.base}/api/v1/auth/refresh`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: this.refreshToken }),
        });
        if (!r.ok) { this.clear(); return false; }
        this.setTokens(await r.json());
        return true;
      } finally { this.refreshing = null; }
    })();
    return this.refreshing;
  }

  async call<T>(method: string, path: string, body?: unknown, retry = true): Promise<T> {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
    const r = await this.fetcher(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && retry && (await this.refresh())) return this.call<T>(method, path, body, false);
    if (r.status === 204) return undefined as T;
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new ApiError(r.status, data?.error?.code ?? "error", data?.error?.message ?? r.statusText);
    return data as T;
  }

  async login(path: string, body: unknown): Promise<User> {
    const data = await this.call<{ user: User; access_token: string; refresh_token: string }>("POST", path, body, false);
    this.setTokens(data);
    return data.user;
  }
}
