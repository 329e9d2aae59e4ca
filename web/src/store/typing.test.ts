import { describe, expect, it } from "vitest";
import { TYPING_IDLE_MS, TYPING_RESEND_MS, TypingSender, TypingState, typingText } from "./typing";

describe("TypingState", () => {
  it("expires an entry after its ttl without a refresh", () => {
    const t = new TypingState();
    t.set(1, "Ann", true, 6000, 0);
    expect(t.names(5999)).toEqual(["Ann"]);
    expect(t.names(6000)).toEqual([]);
  });

  it("a refresh extends the entry", () => {
    const t = new TypingState();
    t.set(1, "Ann", true, 6000, 0);
    t.set(1, "Ann", true, 6000, 3000);
    expect(t.names(8000)).toEqual(["Ann"]);
    expect(t.names(9000)).toEqual([]);
  });

  it("typing: false and a message from the user clear it at once", () => {
    const t = new TypingState();
    t.set(1, "Ann", true, 6000, 0);
    t.set(2, "Bo", true, 6000, 0);
    t.set(1, "Ann", false, 6000, 10);
    t.clear(2);
    expect(t.names(20)).toEqual([]);
  });

  it("tells when the next entry expires", () => {
    const t = new TypingState();
    expect(t.nextExpiry()).toBeNull();
    t.set(1, "Ann", true, 6000, 100);
    t.set(2, "Bo", true, 2000, 100);
    expect(t.nextExpiry()).toBe(2100);
  });
});

describe("typingText", () => {
  it("names one, two, or two and the others", () => {
    expect(typingText([])).toBe("");
    expect(typingText(["Ann"])).toBe("Ann is typing…");
    expect(typingText(["Ann", "Bo"])).toBe("Ann and Bo are typing…");
    expect(typingText(["Ann", "Bo", "Cy"])).toBe("Ann, Bo and 1 other are typing…");
    expect(typingText(["Ann", "Bo", "Cy", "Di"])).toBe("Ann, Bo and 2 others are typing…");
  });
});

describe("TypingSender", () => {
  it("emits typing: true at most once per resend interval while typing", () => {
    const s = new TypingSender();
    expect(s.input(0)).toBe(true);
    expect(s.input(1000)).toBe(false);
    expect(s.input(TYPING_RESEND_MS - 1)).toBe(false);
    expect(s.input(TYPING_RESEND_MS)).toBe(true);
  });

  it("emits typing: false once on stop, only after having announced typing", () => {
    const s = new TypingSender();
    expect(s.stop()).toBe(false);
    s.input(0);
    expect(s.stop()).toBe(true);
    expect(s.stop()).toBe(false);
    expect(s.input(10)).toBe(true); // typing again announces again at once
  });

  it("stops by itself after the idle time", () => {
    const s = new TypingSender();
    s.input(0);
    expect(s.tick(TYPING_IDLE_MS - 1)).toBe(false);
    expect(s.tick(TYPING_IDLE_MS)).toBe(true);
    expect(s.tick(TYPING_IDLE_MS + 1000)).toBe(false);
  });
});
