import { describe, expect, it } from "vitest";
import { candidates, insertMention, mentionAt } from "./mentions";
import type { User } from "../types";

const members: User[] = [
  { id: 1, username: "me", display_name: "Me", role: "user", kind: "human" },
  { id: 2, username: "bob", display_name: "Bob Builder", role: "user", kind: "human" },
  { id: 3, username: "bobby", display_name: "Robert", role: "user", kind: "human" },
  { id: 4, username: "carol", display_name: "Carol Bobson", role: "user", kind: "human" },
  { id: 5, username: "wa_x", display_name: "Contact", role: "user", kind: "contact" },
];

describe("mention autocomplete", () => {
  it("finds the @name being typed before the caret, not in e-mail addresses", () => {
    expect(mentionAt("hi @bo", 6)).toEqual({ start: 3, query: "bo" });
    expect(mentionAt("@", 1)).toEqual({ start: 0, query: "" });
    expect(mentionAt("mail a@bo", 9)).toBeNull();
    expect(mentionAt("hi @bob there", 13)).toBeNull();
  });

  it("offers members by username prefix first, then by name, plus the assistant, never the user or contacts", () => {
    const names = candidates("bo", members, { meId: 1, broadcast: false }).map((c) => c.username);
    expect(names).toEqual(["bob", "bobby", "carol"]);
    const all = candidates("", members, { meId: 1, broadcast: false }).map((c) => c.username);
    expect(all).toEqual(["bob", "bobby", "carol", "assistant"]);
  });

  it("offers @room and @here only to those who may use them", () => {
    expect(candidates("r", members, { meId: 1, broadcast: false }).map((c) => c.username)).not.toContain("room");
    expect(candidates("r", members, { meId: 1, broadcast: true }).map((c) => c.username)).toContain("room");
  });

  it("replaces the typed part with the username and a space", () => {
    const at = mentionAt("hi @bo and", 6)!;
    expect(insertMention("hi @bo and", at, 6, "bobby")).toEqual({ text: "hi @bobby and", caret: 10 });
  });
});
