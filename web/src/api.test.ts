import { describe, expect, it } from "vitest";
import { Api, REFRESH_KEY, tokenExpiry } from "./api";

function memoryStorage() {
  const map = new Map<string, string>();
  return { map, getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v), removeItem: (k: string) => void map.delete(k) };
}

/** A JWT-shaped token whose payload carries `exp` (seconds); the signature is not checked client-side. */
function jwt(expSeconds: number, tag = "x"): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "EdDSA" })}.${b64({ exp: expSeconds, tag })}.sig`;
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A stub server: `/auth/refresh` rotates r<n> -> r<n+1> and hands out access token "a<n+1>". */
function stubServer(opts: { refreshStatus?: number; refreshThrows?: boolean } = {}) {
  const calls: { url: string; auth?: string; body?: unknown }[] = [];
  let valid = "a1";
  let current = "r1";
  const fetcher = (async (url: string, init: RequestInit = {}) => {
    const auth = (init.headers as Record<string, string> | undefined)?.Authorization;
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ url, auth, body });
    if (url.endsWith("/api/v1/auth/refresh")) {
      if (opts.refreshThrows) throw new TypeError("Failed to fetch");
      if (opts.refreshStatus) return json(opts.refreshStatus, { error: { code: "unauthorized", message: "revoked" } });
      if (body.refresh_token !== current) return json(401, { error: { code: "unauthorized", message: "reused" } });
      const n = Number(current.slice(1)) + 1;
      current = `r${n}`;
      valid = `a${n}`;
      return json(200, { access_token: valid, refresh_token: current });
    }
    if (auth !== `Bearer ${valid}`) return json(401, { error: { code: "unauthorized", message: "expired" } });
    return json(200, { user: { id: 1 }, url });
  }) as typeof fetch;
  return { calls, fetcher, expire: () => { valid = "none"; } };
}

describe("Api token refresh", () => {
  it("refreshes on 401, replays the request and stores the rotated refresh token", async () => {
    const server = stubServer();
    const storage = memoryStorage();
    const api = new Api({ fetch: server.fetcher, storage });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    const me = await api.call<{ user: { id: number } }>("GET", "/api/v1/users/me");
    expect(me.user.id).toBe(1);
    expect(storage.map.get(REFRESH_KEY)).toBe("r2");
    expect(api.accessToken).toBe("a2");
    expect(server.calls.map((c) => c.url)).toEqual(["/api/v1/users/me", "/api/v1/auth/refresh", "/api/v1/users/me"]);
    expect(server.calls[2].auth).toBe("Bearer a2");
  });

  it("tells its listeners after each refresh that brought a new access token (the socket renews with it)", async () => {
    const server = stubServer();
    const api = new Api({ fetch: server.fetcher, storage: memoryStorage() });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    const seen: (string | null)[] = [];
    const off = api.onRefreshed(() => seen.push(api.accessToken));
    await api.call("GET", "/api/v1/users/me");
    expect(seen).toEqual(["a2"]);
    off();
    await api.refresh();
    expect(seen).toEqual(["a2"]);
  });

  it("several requests failing at once share one refresh (a second would reuse a dead token)", async () => {
    const server = stubServer();
    const api = new Api({ fetch: server.fetcher, storage: memoryStorage() });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    const results = await Promise.all([1, 2, 3].map((i) => api.call<{ url: string }>("GET", `/api/v1/x/${i}`)));
    expect(results.map((r) => r.url)).toEqual(["/api/v1/x/1", "/api/v1/x/2", "/api/v1/x/3"]);
    expect(server.calls.filter((c) => c.url.endsWith("/auth/refresh"))).toHaveLength(1);
    expect(api.refreshToken).toBe("r2");
  });

  it("a rejected refresh token ends the session: tokens cleared, callback called, 401 surfaced", async () => {
    const server = stubServer({ refreshStatus: 401 });
    const storage = memoryStorage();
    let ended = 0;
    const api = new Api({ fetch: server.fetcher, storage, onSessionEnded: () => ended++ });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    await expect(api.call("GET", "/api/v1/users/me")).rejects.toMatchObject({ status: 401, code: "unauthorized" });
    expect(storage.map.has(REFRESH_KEY)).toBe(false);
    expect(api.accessToken).toBeNull();
    expect(ended).toBe(1);
  });

  it("a network failure during refresh keeps the refresh token for later", async () => {
    const server = stubServer({ refreshThrows: true });
    const storage = memoryStorage();
    const api = new Api({ fetch: server.fetcher, storage });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    expect(await api.refresh()).toBe(false);
    expect(storage.map.get(REFRESH_KEY)).toBe("r1");
  });

  it("does not try to refresh for the auth endpoints themselves", async () => {
    const server = stubServer();
    const api = new Api({ fetch: server.fetcher, storage: memoryStorage() });
    api.setTokens({ access_token: "stale", refresh_token: "r1" });
    await expect(api.call("POST", "/api/v1/auth/logout", { refresh_token: "r1" })).rejects.toMatchObject({ status: 401 });
    expect(server.calls).toHaveLength(1);
  });

  it("freshToken refreshes only when the access token expires within the margin", async () => {
    const server = stubServer();
    let now = 1_000_000_000_000;
    const api = new Api({ fetch: server.fetcher, storage: memoryStorage(), now: () => now });
    const far = jwt(now / 1000 + 600);
    api.setTokens({ access_token: far, refresh_token: "r1" });
    expect(await api.freshToken()).toBe(far);
    expect(server.calls).toHaveLength(0);
    now += 560_000; // 40 s left: inside the one-minute margin
    expect(await api.freshToken()).toBe("a2");
    expect(api.refreshToken).toBe("r2");
  });

  it("login stores both tokens and the user; logout revokes and forgets them", async () => {
    const storage = memoryStorage();
    const seen: string[] = [];
    const fetcher = (async (url: string) => {
      seen.push(url);
      if (url.endsWith("/login")) return json(200, { user: { id: 3, username: "ann" }, access_token: "a", refresh_token: "r" });
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    const api = new Api({ fetch: fetcher, storage });
    const user = await api.login("/api/v1/auth/login", { username: "ann", password: "pw" });
    expect(user.id).toBe(3);
    expect(storage.map.get(REFRESH_KEY)).toBe("r");
    await api.logout();
    expect(seen).toEqual(["/api/v1/auth/login", "/api/v1/auth/logout"]);
    expect(storage.map.has(REFRESH_KEY)).toBe(false);
    expect(api.user).toBeNull();
  });

  it("reads the expiry of a JWT and tolerates garbage", () => {
    expect(tokenExpiry(jwt(1234))).toBe(1_234_000);
    expect(tokenExpiry("not a token")).toBeNull();
  });
});
