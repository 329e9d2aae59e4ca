import { beforeEach, describe, expect, it } from "vitest";
import type { ApiError } from "./api";
import { FakeXHR, flush, uploaded } from "./testing";
import { startUpload, UPLOAD_IDLE_MS, type UploadAuth } from "./uploads";

function auth(tokens = ["a1", "a2"], refreshOk = true) {
  let i = 0;
  const calls = { refresh: 0 };
  const a: UploadAuth = {
    token: async () => tokens[Math.min(i, tokens.length - 1)],
    refresh: async () => {
      calls.refresh++;
      i++;
      return refreshOk;
    },
  };
  return { a, calls };
}

const file = (name = "photo.png", size = 1000) => new File([new Uint8Array(size)], name, { type: "image/png" });
const xhr = () => new FakeXHR() as unknown as XMLHttpRequest;

async function sent(n = 1): Promise<FakeXHR> {
  for (let i = 0; i < 10 && FakeXHR.all.length < n; i++) await flush();
  return FakeXHR.all[n - 1];
}

beforeEach(() => {
  FakeXHR.all = [];
});

describe("startUpload", () => {
  it("posts one multipart `file` part with the bearer token and reports upload progress", async () => {
    const seen: [number, number][] = [];
    const h = startUpload(file(), auth().a, { xhr, onProgress: (l, t) => seen.push([l, t]) });
    const req = await sent();
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/api/v1/uploads");
    expect(req.headers.Authorization).toBe("Bearer a1");
    const part = (req.body as FormData).get("file") as File;
    expect(part.name).toBe("photo.png");
    req.progress(400, 1000);
    req.progress(1000, 1000);
    req.respond(201, uploaded("u1", "photo.png"));
    await expect(h.promise).resolves.toMatchObject({ id: "u1", name: "photo.png" });
    expect(seen).toEqual([[400, 1000], [1000, 1000]]);
  });

  it("cancel aborts the request and rejects with `aborted`", async () => {
    const h = startUpload(file(), auth().a, { xhr });
    const req = await sent();
    req.progress(10, 1000);
    h.abort();
    expect(req.aborted).toBe(true);
    await expect(h.promise).rejects.toMatchObject({ code: "aborted" });
  });

  it("turns 413 and 415 into too_large and unsupported_type with the server's message", async () => {
    const big = startUpload(file(), auth().a, { xhr });
    (await sent(1)).respond(413, { error: { code: "too_large", message: "Files can be at most 25 MB." } });
    await expect(big.promise).rejects.toMatchObject({ status: 413, code: "too_large", message: "Files can be at most 25 MB." });
    const exe = startUpload(file("x.exe"), auth().a, { xhr });
    (await sent(2)).respond(415, { error: { code: "unsupported_type", message: "application/x-msdownload is not allowed." } });
    await expect(exe.promise).rejects.toMatchObject({ status: 415, code: "unsupported_type", message: "application/x-msdownload is not allowed." });
  });

  it("a proxy's 413 page without JSON still reads as too_large", async () => {
    const h = startUpload(file(), auth().a, { xhr });
    (await sent()).respond(413, "<html><body>413 Request Entity Too Large</body></html>");
    const err = (await h.promise.catch((e: ApiError) => e)) as ApiError;
    expect(err.code).toBe("too_large");
    expect(err.message).toBe("The file is too large.");
  });

  it("a 401 refreshes the session once and sends the file again with the new token", async () => {
    const { a, calls } = auth();
    const h = startUpload(file(), a, { xhr });
    (await sent(1)).respond(401, { error: { code: "unauthorized", message: "expired" } });
    const again = await sent(2);
    expect(calls.refresh).toBe(1);
    expect(again.headers.Authorization).toBe("Bearer a2");
    again.respond(201, uploaded("u2", "photo.png"));
    await expect(h.promise).resolves.toMatchObject({ id: "u2" });
  });

  it("a second 401 is not retried again", async () => {
    const { a, calls } = auth();
    const h = startUpload(file(), a, { xhr });
    (await sent(1)).respond(401, { error: { code: "unauthorized", message: "expired" } });
    (await sent(2)).respond(401, { error: { code: "unauthorized", message: "revoked" } });
    await expect(h.promise).rejects.toMatchObject({ code: "unauthorized" });
    expect(calls.refresh).toBe(1);
    expect(FakeXHR.all).toHaveLength(2);
  });

  it("gives up after UPLOAD_IDLE_MS without progress (a stalled connection), not before", async () => {
    const timers: { fn: () => void; ms: number; live: boolean }[] = [];
    const h = startUpload(file(), auth().a, {
      xhr,
      setTimeout: (fn, ms) => { const t = { fn, ms, live: true }; timers.push(t); return t; },
      clearTimeout: (t) => { (t as { live: boolean }).live = false; },
    });
    const req = await sent();
    req.progress(100, 1000); // progress re-arms the idle timer
    const live = timers.filter((t) => t.live);
    expect(live).toHaveLength(1);
    expect(live[0].ms).toBe(UPLOAD_IDLE_MS);
    live[0].fn();
    expect(req.aborted).toBe(true);
    await expect(h.promise).rejects.toMatchObject({ code: "timeout" });
  });
});
