// File uploads: `POST /api/v1/uploads`, multipart/form-data with one `file` part, through
// XMLHttpRequest, the one browser API that reports upload progress (fetch has none).
//
// Authentication works like Api.call: the access token (refreshed first when close to expiry)
// as a Bearer header; a 401 rotates the session once and sends the file again. The server's
// error body `{error: {code, message}}` becomes an ApiError; a proxy's bare 413 page (no JSON)
// still gets the right code from the status.
import { ApiError } from "./api";
import type { Upload } from "./types";

export const UPLOAD_PATH = "/api/v1/uploads";
/** No byte sent or received for this long: the upload is given up. A large file on a slow link
 * may take minutes in all, so the bound is on silence, not on the whole request. */
export const UPLOAD_IDLE_MS = 60_000;

export interface UploadAuth {
  /** An access token valid for a while yet (Api.freshToken). */
  token: () => Promise<string | null>;
  /** Rotates the session after a 401; false when it could not (Api.refresh). */
  refresh: () => Promise<boolean>;
}

export interface UploadOptions {
  base?: string;
  onProgress?: (loaded: number, total: number) => void;
  /** Replaceable in tests. */
  xhr?: () => XMLHttpRequest;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export interface UploadHandle {
  promise: Promise<Upload>;
  /** Stops the transfer; the promise rejects with code `aborted`. */
  abort: () => void;
}

/** Codes by status, for answers without a JSON error body (e.g. a proxy's 413 page). */
const STATUS_ERRORS: Record<number, [string, string]> = {
  400: ["invalid", "The file was refused."],
  401: ["unauthorized", "Your session has ended. Please log in again."],
  413: ["too_large", "The file is too large."],
  415: ["unsupported_type", "This type of file is not allowed."],
  429: ["rate_limited", "Too many uploads; try again in a moment."],
};

interface Answer {
  status: number;
  text: string;
}

export function startUpload(file: File, auth: UploadAuth, opts: UploadOptions = {}): UploadHandle {
  const makeXhr = opts.xhr ?? (() => new XMLHttpRequest());
  const later = opts.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
  const cancel = opts.clearTimeout ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let current: XMLHttpRequest | null = null;
  let aborted = false;

  const send = (token: string | null): Promise<Answer> =>
    new Promise<Answer>((resolve, reject) => {
      if (aborted) return reject(abortedError());
      const xhr = makeXhr();
      current = xhr;
      let idle: unknown = null;
      let timedOut = false;
      const quiet = () => {
        if (idle !== null) cancel(idle);
        idle = later(() => {
          timedOut = true;
          xhr.abort();
        }, UPLOAD_IDLE_MS);
      };
      const done = () => {
        if (idle !== null) cancel(idle);
        current = null;
      };
      xhr.open("POST", `${opts.base ?? ""}${UPLOAD_PATH}`);
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (e: ProgressEvent) => {
        quiet();
        opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
      };
      xhr.onprogress = quiet; // the answer is coming in
      xhr.onload = () => {
        done();
        resolve({ status: xhr.status, text: xhr.responseText });
      };
      xhr.onerror = () => {
        done();
        reject(new ApiError(0, "unavailable", navigatorOffline() ? "You are offline." : "The upload did not reach the server."));
      };
      xhr.onabort = () => {
        done();
        reject(aborted ? abortedError() : new ApiError(0, timedOut ? "timeout" : "unavailable", "The upload stalled; try again."));
      };
      const form = new FormData();
      form.append("file", file, file.name);
      quiet();
      xhr.send(form);
    });

  const run = async (): Promise<Upload> => {
    let answer = await send(await auth.token());
    // the access token expired or was revoked meanwhile: rotate once and send the file again
    if (answer.status === 401 && !aborted && (await auth.refresh())) answer = await send(await auth.token());
    return parseAnswer(answer);
  };

  return {
    promise: run(),
    abort: () => {
      aborted = true;
      current?.abort();
    },
  };
}

function parseAnswer({ status, text }: Answer): Upload {
  let data: unknown = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  if (status >= 200 && status < 300 && isUpload(data)) return data;
  const err = (data as { error?: { code?: unknown; message?: unknown; details?: Record<string, unknown> } } | null)?.error;
  const [code, message] = STATUS_ERRORS[status] ?? (status >= 200 && status < 300 ? ["internal", "The server's answer was not understood."] : ["unavailable", `The upload failed (HTTP ${status}).`]);
  throw new ApiError(status, typeof err?.code === "string" ? err.code : code, typeof err?.message === "string" && err.message ? err.message : message, err?.details);
}

function isUpload(d: unknown): d is Upload {
  const u = d as Partial<Upload> | null;
  return !!u && typeof u.id === "string" && typeof u.url === "string" && typeof u.name === "string";
}

function abortedError(): ApiError {
  return new ApiError(0, "aborted", "Cancelled.");
}

function navigatorOffline(): boolean {
  return typeof navigator !== "undefined" && navigator.onLine === false;
}
