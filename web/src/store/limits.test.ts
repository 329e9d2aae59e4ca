import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_MESSAGE_CHARS, fetchMaxMessageChars, lengthNote } from "./limits";

describe("lengthNote", () => {
  it("stays hidden well below the limit and counts near it", () => {
    expect(lengthNote(100, 4000)).toEqual({ show: false, over: false, text: "100 / 4,000" });
    expect(lengthNote(3600, 4000)).toEqual({ show: true, over: false, text: "3,600 / 4,000" });
    expect(lengthNote(4000, 4000).over).toBe(false);
  });

  it("says by how much a pasted text is over the limit instead of cutting it", () => {
    expect(lengthNote(10_000, 4000)).toEqual({ show: true, over: true, text: "6,000 characters too long (at most 4,000)" });
    expect(lengthNote(4001, 4000).text).toBe("1 character too long (at most 4,000)");
  });
});

describe("fetchMaxMessageChars", () => {
  it("takes the server's configured limit, or the default when the server cannot say", async () => {
    const answer = async <T,>() => ({ max_message_chars: 1200 }) as T;
    expect(await fetchMaxMessageChars(answer)).toBe(1200);
    const fail = async <T,>(): Promise<T> => { throw new Error("offline"); };
    expect(await fetchMaxMessageChars(fail)).toBe(DEFAULT_MAX_MESSAGE_CHARS);
  });
});
