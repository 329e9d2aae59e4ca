// The files being attached to the next message (the composer's chips), without DOM.
//
// Each file starts uploading as soon as it is picked; a chip is `uploading` (with progress),
// `done` (the server's upload record, ready to send) or `error` (the server's message, e.g. too
// large or type not allowed). Sending takes the finished ones; files still uploading stay for the
// next message. At most MAX_ATTACHMENTS files per message, as the server enforces.
import type { ApiError } from "../api";
import type { Upload } from "../types";
import type { UploadHandle } from "../uploads";

export const MAX_ATTACHMENTS = 10;
/** Failures worth a Retry button: the same file may go through later. */
const RETRYABLE = new Set(["unavailable", "timeout", "rate_limited", "internal"]);

export type ChipState = "uploading" | "done" | "error";

export interface Chip {
  key: string;
  file: File;
  state: ChipState;
  loaded: number;
  total: number;
  error?: string;
  code?: string;
  upload?: Upload;
  abort?: () => void;
}

export type Uploader = (file: File, onProgress: (loaded: number, total: number) => void) => UploadHandle;

export class UploadList {
  private readonly chips = new Map<string, Chip>();
  private seq = 0;

  /**
   * `onChange(progressOnly)`: `true` when only a byte count moved (the view updates the bars in
   * place), `false` when chips came, went or changed state.
   */
  constructor(private readonly uploader: Uploader, private readonly onChange: (progressOnly: boolean) => void) {}

  all(): Chip[] {
    return [...this.chips.values()];
  }

  /** Starts uploading the files; the answer is a message when some were refused by the limit. */
  add(files: readonly File[]): string | null {
    const room = MAX_ATTACHMENTS - this.all().filter((c) => c.state !== "error").length;
    const taken = files.slice(0, Math.max(0, room));
    for (const file of taken) {
      const chip: Chip = { key: `u${++this.seq}`, file, state: "uploading", loaded: 0, total: file.size };
      this.chips.set(chip.key, chip);
      this.start(chip);
    }
    if (taken.length) this.onChange(false);
    const refused = files.length - taken.length;
    if (!refused) return null;
    return `A message can carry at most ${MAX_ATTACHMENTS} files; ${refused === 1 ? "1 file was" : `${refused} files were`} not added.`;
  }

  /** Cancels an upload in flight (aborts the request) or drops a chip. */
  remove(key: string): void {
    const chip = this.chips.get(key);
    if (!chip) return;
    this.chips.delete(key);
    chip.abort?.();
    this.onChange(false);
  }

  retry(key: string): void {
    const chip = this.chips.get(key);
    if (!chip || chip.state !== "error") return;
    Object.assign(chip, { state: "uploading", loaded: 0, error: undefined, code: undefined });
    this.start(chip);
    this.onChange(false);
  }

  retryable(chip: Chip): boolean {
    return chip.state === "error" && RETRYABLE.has(chip.code ?? "");
  }

  /** The uploads that can go with a message now. */
  ready(): Upload[] {
    return this.all().flatMap((c) => (c.state === "done" && c.upload ? [c.upload] : []));
  }

  /** Takes the finished uploads for a send, and drops the failed chips with them; uploads still
   * in flight stay. */
  take(): Upload[] {
    const ready = this.ready();
    for (const [key, c] of this.chips) if (c.state !== "uploading") this.chips.delete(key);
    this.onChange(false);
    return ready;
  }

  /** Aborts everything (the room is left). */
  clear(): void {
    for (const c of this.chips.values()) c.abort?.();
    this.chips.clear();
    this.onChange(false);
  }

  private start(chip: Chip): void {
    const handle = this.uploader(chip.file, (loaded, total) => {
      if (this.chips.get(chip.key) !== chip) return;
      chip.loaded = loaded;
      chip.total = total || chip.total;
      this.onChange(true);
    });
    chip.abort = handle.abort;
    handle.promise.then(
      (upload) => {
        chip.abort = undefined;
        if (this.chips.get(chip.key) !== chip) return;
        Object.assign(chip, { state: "done", upload, loaded: chip.total });
        this.onChange(false);
      },
      (e: ApiError) => {
        chip.abort = undefined;
        if (this.chips.get(chip.key) !== chip || e.code === "aborted") return;
        Object.assign(chip, { state: "error", code: e.code ?? "error", error: e.message || "The upload failed." });
        this.onChange(false);
      },
    );
  }
}

/** "812 B", "14 KB", "3.2 MB" (powers of 1024, as file managers show). */
export function humanSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v)} ${units[i]}`;
}
