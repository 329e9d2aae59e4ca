// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { avatar, initials, setAvatar } from "./avatar";

describe("avatars", () => {
  it("show the picture as an <img> when the record has an avatar_url", () => {
    const el = avatar("Ada Lovelace", "/files/abc/avatar.webp?exp=1&sig=x&v=thumb");
    const img = el.querySelector("img");
    expect(img?.getAttribute("src")).toBe("/files/abc/avatar.webp?exp=1&sig=x&v=thumb");
    expect(img?.getAttribute("alt")).toBe("");
    expect(el.textContent).toBe("");
  });

  it("show the initials when there is no picture", () => {
    expect(avatar("Ada Lovelace", null).textContent).toBe("AL");
    expect(avatar("ada", undefined).querySelector("img")).toBeNull();
    expect(initials("  ")).toBe("?");
  });

  it("fall back to the initials when the picture fails to load (an expired or removed URL)", () => {
    const el = avatar("Grace Hopper", "/files/gone/avatar.webp?v=thumb");
    el.querySelector("img")!.dispatchEvent(new Event("error"));
    expect(el.querySelector("img")).toBeNull();
    expect(el.textContent).toBe("GH");
    expect(el.classList.contains("has-picture")).toBe(false);
  });

  it("switch between picture and initials in place", () => {
    const el = avatar("Alan Turing", null);
    setAvatar(el, "Alan Turing", "/files/new/avatar.webp?v=thumb");
    expect(el.querySelector("img")).not.toBeNull();
    setAvatar(el, "Alan Turing", null);
    expect(el.textContent).toBe("AT");
  });
});
