// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { CampaignProgress } from "../types";
import { actionsFor, newer, percentDone, problemLines } from "./campaigns";

const progress = (seq: number, sent: number): CampaignProgress => ({ campaign_id: 1, seq, status: "running",
  pause_reason: null, total: 10, queued: 10 - sent, sending: 0, sent, delivered: 0, read: 0, failed: 0, replied: 0,
  skipped: 0, unknown: 0 });

describe("the campaigns page", () => {
  it("counts sent, failed, skipped and unknown recipients as done", () => {
    expect(percentDone({ total: 0, sent: 0, failed: 0, skipped: 0, unknown: 0 })).toBe(0);
    expect(percentDone({ total: 8, sent: 4, failed: 1, skipped: 1, unknown: 0 })).toBe(75);
    expect(percentDone({ total: 3, sent: 3, failed: 0, skipped: 0, unknown: 0 })).toBe(100);
  });

  it("keeps the event with the highest seq, whatever order they arrive in", () => {
    expect(newer(undefined, progress(1, 1))).toBe(true);
    expect(newer(progress(5, 5), progress(4, 4))).toBe(false);
    expect(newer(progress(5, 5), progress(6, 6))).toBe(true);
  });

  it("shows the server's CSV problems with their line numbers", () => {
    expect(problemLines({ problems: [{ line: 3, column: "phone", message: "not a number" }, { line: 1, column: null, message: "not UTF-8" }] }))
      .toEqual(["line 3 (phone): not a number", "line 1: not UTF-8"]);
    expect(problemLines(undefined)).toEqual([]);
  });

  it("offers only the moves the server allows from each status", () => {
    expect(actionsFor("draft")).toEqual(["start", "cancel", "delete"]);
    expect(actionsFor("running")).toEqual(["pause", "cancel"]);
    expect(actionsFor("paused")).toEqual(["resume", "cancel", "delete"]);
  });
});
