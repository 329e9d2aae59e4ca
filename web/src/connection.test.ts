import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, bannerText, type ConnState, Connection, RENEW_BEFORE_MS, refusal } from "./connection";

/** Just enough of a socket.io Socket for Connection: listeners, active/connected, connect(). */
class FakeSocket {
  connected = false;
  active = true;
  connects = 0;
  disconnects = 0;
  auth: ((cb: (d: object) => void) => void) | null = null;
  private handlers = new Map<string, ((...a: unknown[]) => void)[]>();
  io = { on: (ev: string, fn: (...a: unknown[]) => void) => this.on(ev, fn), removeAllListeners: () => undefined };
  volatile = { emit: () => undefined };
  /** What acked emits answer; undefined: they time out. */
  ack: unknown = undefined;
  emitted: [string, unknown][] = [];

  on(ev: string, fn: (...a: unknown[]) => void) {
    this.handlers.set(ev, [...(this.handlers.get(ev) ?? []), fn]);
    return this;
  }
  fire(ev: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(ev) ?? []) fn(...args);
  }
  connect() {
    this.connects++;
    this.active = true;
    return this;
  }
  disconnect() {
    this.disconnects++;
    this.active = false;
    return this;
  }
  removeAllListeners() {
    this.handlers.clear();
  }
  timeout() {
    return {
      emit: (e: string, d: unknown, cb: (err: Error | null, ack: unknown) => void) => {
        this.emitted.push([e, d]);
        if (this.ack === undefined) cb(new Error("timeout"), undefined);
        else cb(null, this.ack);
      },
    };
  }
}

function jwt(expMs: number, tag = "x"): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${b64({ alg: "EdDSA" })}.${b64({ exp: Math.floor(expMs / 1000), tag })}.sig`;
}

function setup(refreshOk = true, token: { value: string } = { value: "tok" }) {
  const socket = new FakeSocket();
  const states: ConnState[] = [];
  const connects: boolean[] = [];
  let ended = 0;
  let refreshes = 0;
  let session = true;
  const conn = new Connection({
    token: async () => token.value,
    refresh: async () => { refreshes++; if (!refreshOk) session = false; return refreshOk; },
    hasSession: () => session,
    onState: (s) => states.push(s),
    onConnect: (first) => connects.push(first),
    onSessionEnded: () => ended++,
    handlers: {},
    factory: (_url, opts) => {
      socket.auth = opts.auth as FakeSocket["auth"];
      return socket as never;
    },
  });
  conn.start();
  return { socket, conn, states, connects, ended: () => ended, refreshes: () => refreshes };
}

describe("Connection", () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it("hands a fresh token to every connect attempt", async () => {
    const { socket } = setup();
    const got = await new Promise<object>((resolve) => socket.auth!(resolve));
    expect(got).toEqual({ token: "tok" });
  });

  it("reports connecting, online, then retrying when the transport drops, and resumes on reconnect", () => {
    const { socket, states, connects } = setup();
    socket.connected = true;
    socket.fire("connect");
    socket.connected = false;
    socket.fire("disconnect", "transport close");
    socket.connected = true;
    socket.fire("connect");
    expect(states.map((s) => s.status)).toEqual(["connecting", "online", "retrying", "online"]);
    expect(connects).toEqual([true, false]);
  });

  it("after an unauthorized refusal, refreshes the token and reconnects itself after a backoff", async () => {
    const { socket, refreshes } = setup();
    socket.active = false; // a refused connect: socket.io will not retry by itself
    socket.fire("connect_error", Object.assign(new Error("{'code': 'unauthorized', 'message': 'token expired'}")));
    await vi.advanceTimersByTimeAsync(0);
    expect(refreshes()).toBe(1);
    expect(socket.connects).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(socket.connects).toBe(1);
  });

  it("ends the session when the refusal is unauthorized and the refresh token is dead", async () => {
    const { socket, ended } = setup(false);
    socket.active = false;
    socket.fire("connect_error", Object.assign(new Error("x"), { data: { code: "unauthorized", message: "revoked" } }));
    await vi.advanceTimersByTimeAsync(0);
    expect(ended()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connects).toBe(0);
  });

  it("leaves transport failures to socket.io's own reconnection", async () => {
    const { socket, states } = setup();
    socket.fire("connect_error", new Error("websocket error"));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connects).toBe(0);
    expect(states.at(-1)?.status).toBe("retrying");
  });

  it("retries now on demand, and emits fail fast when not connected", async () => {
    const { socket, conn } = setup();
    conn.retryNow();
    expect(socket.disconnects).toBe(1);
    expect(socket.connects).toBe(1);
    expect(await conn.emit("sync", {})).toEqual({ ok: false, error: { code: "offline", message: "Not connected." } });
    socket.connected = true;
    expect(await conn.emit("sync", {})).toMatchObject({ ok: false, error: { code: "timeout" } });
  });
});

describe("Connection, when the socket's authorisation runs out", () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  /** Connected, with the token handed to the connect. */
  async function online(refreshOk = true, exp = Date.now() + 15 * 60_000) {
    const token = { value: jwt(exp, "first") };
    const t = setup(refreshOk, token);
    await new Promise<object>((resolve) => t.socket.auth!(resolve));
    t.socket.connected = true;
    t.socket.fire("connect");
    return { ...t, token };
  }

  it("when the server ends the session, refreshes and reconnects at once, without a banner, and resumes", async () => {
    const { socket, states, connects, refreshes } = await online();
    socket.fire("session:ended", { reason: "expired" });
    socket.connected = false;
    socket.active = false;
    socket.fire("disconnect", "io server disconnect");
    await vi.advanceTimersByTimeAsync(0);
    expect(refreshes()).toBe(1);
    expect(socket.connects).toBe(1); // no backoff wait
    socket.connected = true;
    socket.fire("connect");
    expect(states.map((s) => s.status)).toEqual(["connecting", "online", "online"]);
    expect(connects).toEqual([true, false]); // the second connect resumes (sync) like any reconnect
  });

  it("goes back to the login page when the server ended the session and the refresh token is dead", async () => {
    const { socket, ended } = await online(false);
    socket.fire("session:ended", { reason: "logged_out" });
    socket.connected = false;
    socket.fire("disconnect", "io server disconnect");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ended()).toBe(1);
    expect(socket.connects).toBe(0);
  });

  it("renews in band with auth shortly before the token expires, and after a refresh", async () => {
    const exp = Date.now() + 120_000;
    const { socket, conn, token } = await online(true, exp);
    socket.ack = { ok: true, expires_at: 0 };
    token.value = jwt(exp + 15 * 60_000, "second"); // what the API hands out once refreshed
    const due = Math.floor(exp / 1000) * 1000 - Date.now() - RENEW_BEFORE_MS; // exp is in whole seconds
    await vi.advanceTimersByTimeAsync(due - 1);
    expect(socket.emitted).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.emitted).toEqual([["auth", { token: token.value }]]);
    // a refresh for another reason (a 401 on REST) hands the socket the new token too
    token.value = jwt(exp + 16 * 60_000, "third");
    await conn.renew();
    expect(socket.emitted.map(([e, d]) => [e, (d as { token: string }).token])).toEqual([
      ["auth", jwt(exp + 15 * 60_000, "second")],
      ["auth", token.value],
    ]);
    await conn.renew(); // the same token again: nothing to send
    expect(socket.emitted.length).toBe(2);
  });

  it("reconnects with the new token when the server will not take it on this socket", async () => {
    const { socket, conn, token } = await online();
    socket.ack = { ok: false, error: { code: "forbidden", message: "the role changed; connect again" } };
    token.value = jwt(Date.now() + 15 * 60_000, "new role");
    await conn.renew();
    expect(socket.disconnects).toBe(1);
    expect(socket.connects).toBe(1);
  });
});

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, shortened by the jitter", () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffDelay(n, 1000, 30_000, 0.5, () => 0))).toEqual([1000, 2000, 4000, 8000, 30_000]);
    expect(backoffDelay(3, 1000, 30_000, 0.5, () => 1)).toBe(2000);
  });
});

describe("refusal", () => {
  it("reads the code from data, or from python-socketio's message text", () => {
    expect(refusal(Object.assign(new Error("x"), { data: { code: "forbidden", message: "no" } }))).toEqual({ code: "forbidden", message: "no" });
    expect(refusal(new Error("{'code': 'unauthorized', 'message': 'token expired'}"))).toEqual({ code: "unauthorized", message: "token expired" });
    expect(refusal(new Error("server busy"))).toEqual({ code: null, message: "server busy" });
  });
});

describe("bannerText", () => {
  it("is empty online and says when the next attempt is", () => {
    expect(bannerText({ status: "online" })).toBe("");
    expect(bannerText({ status: "retrying", attempt: 2, at: 5_500, reason: "Connection lost" }, 1_000)).toBe("Connection lost. Reconnecting in 5 s…");
    expect(bannerText({ status: "offline" })).toMatch(/offline/);
  });
});
