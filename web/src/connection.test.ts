import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, bannerText, type ConnState, Connection, refusal } from "./connection";

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
    return { emit: (_e: string, _d: unknown, cb: (err: Error | null, ack: unknown) => void) => cb(new Error("timeout"), undefined) };
  }
}

function setup(refreshOk = true) {
  const socket = new FakeSocket();
  const states: ConnState[] = [];
  const connects: boolean[] = [];
  let ended = 0;
  let refreshes = 0;
  let session = true;
  const conn = new Connection({
    token: async () => "tok",
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
