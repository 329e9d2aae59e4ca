// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { cannedQuery } from "../store/canned";
import type { CannedReply } from "../types";
import { CannedPicker } from "./canned";

const reply = (id: number, shortcut: string, body: string, scope: "shared" | "personal" = "shared"): CannedReply =>
  ({ id, scope, shortcut, body, created_at: "", updated_at: "" });
const REPLIES = [reply(1, "hello", "Hello {{contact.name}}"), reply(2, "help", "How can I help?", "personal"), reply(3, "bye", "Bye")];

function setup(enabled = true) {
  const input = document.createElement("textarea");
  document.body.append(input);
  const asked: string[] = [];
  const rendered: number[] = [];
  let picked = 0;
  const picker = new CannedPicker(input, {
    enabled: () => enabled,
    list: async (prefix) => { asked.push(prefix); return REPLIES.filter((r) => r.shortcut.startsWith(prefix)); },
    render: async (id) => { rendered.push(id); return id === 1 ? "Hello Ann" : `text ${id}`; },
    onError: () => undefined,
  }, () => { picked++; });
  document.body.append(picker.el);
  return { input, picker, asked, rendered, picks: () => picked };
}

async function type(input: HTMLTextAreaElement, picker: CannedPicker, text: string): Promise<void> {
  input.value = text;
  input.setSelectionRange(text.length, text.length);
  await picker.update();
}

const key = (k: string) => new KeyboardEvent("keydown", { key: k, cancelable: true });
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("the canned-reply picker", () => {
  it("lists matching replies for / at the start, moves with the arrows and inserts the rendered text on Enter", async () => {
    const { input, picker, asked, rendered, picks } = setup();
    await type(input, picker, "/he");
    expect(asked).toEqual(["he"]);
    expect(picker.open).toBe(true);
    expect([...picker.el.querySelectorAll("li")].map((li) => li.dataset.shortcut)).toEqual(["hello", "help"]);
    expect(picker.handleKey(key("ArrowDown"))).toBe(true);
    expect(picker.el.querySelector("[aria-selected=true]")?.getAttribute("data-shortcut")).toBe("help");
    expect(picker.handleKey(key("ArrowUp"))).toBe(true);
    const enter = key("Enter");
    expect(picker.handleKey(enter)).toBe(true);
    expect(enter.defaultPrevented).toBe(true); // the composer does not send the "/he"
    await settle();
    expect(rendered).toEqual([1]);
    expect(input.value).toBe("Hello Ann");
    expect(picker.open).toBe(false);
    expect(picks()).toBe(1);
  });

  it("keeps the highlighted reply when the next key's answer still lists it", async () => {
    const { input, picker } = setup();
    await type(input, picker, "/h");
    expect(picker.handleKey(key("ArrowDown"))).toBe(true);
    const selected = () => picker.el.querySelector("[aria-selected=true]")?.getAttribute("data-shortcut");
    expect(selected()).toBe("help");
    await type(input, picker, "/hel"); // the answer to "/hel" arrives after the arrow key
    expect(selected()).toBe("help");
    expect(picker.handleKey(key("ArrowUp"))).toBe(true);
    expect(selected()).toBe("hello");
    await type(input, picker, "/hell"); // help is gone from the list: the first is highlighted
    expect(selected()).toBe("hello");
    await type(input, picker, "");
    await type(input, picker, "/he"); // a list opened afresh starts at the top
    expect(selected()).toBe("hello");
  });

  it("Escape closes it and leaves the text; it stays closed until the composer stops asking", async () => {
    const { input, picker } = setup();
    await type(input, picker, "/b");
    expect(picker.handleKey(key("Escape"))).toBe(true);
    expect(picker.open).toBe(false);
    expect(input.value).toBe("/b");
    await type(input, picker, "/by");
    expect(picker.open).toBe(false);
    expect(picker.handleKey(key("Enter"))).toBe(false); // Enter is the composer's again
    await type(input, picker, "");
    await type(input, picker, "/b");
    expect(picker.open).toBe(true);
  });

  it("opens only for / at the very start, and only in WhatsApp conversations", async () => {
    const { input, picker, asked } = setup();
    await type(input, picker, "see /he");
    await type(input, picker, "/he llo");
    expect(asked).toEqual([]);
    expect(picker.open).toBe(false);
    const off = setup(false);
    await type(off.input, off.picker, "/he");
    expect(off.asked).toEqual([]);
    expect(off.picker.open).toBe(false);
  });

  it("reads the shortcut being typed", () => {
    expect(cannedQuery("/", 1)).toBe("");
    expect(cannedQuery("/thx", 4)).toBe("thx");
    expect(cannedQuery("/thx", 2)).toBeNull(); // caret inside: the user is editing, not looking up
    expect(cannedQuery("hi /thx", 7)).toBeNull();
    expect(cannedQuery("/Thx", 4)).toBeNull();
  });
});
