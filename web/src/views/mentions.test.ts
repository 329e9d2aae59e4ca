// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { User } from "../types";
import { MentionPicker } from "./mentions";

const members: User[] = [
  { id: 1, username: "me", display_name: "Me", role: "user", kind: "human" },
  { id: 2, username: "bob", display_name: "Bob", role: "user", kind: "human" },
  { id: 3, username: "bobby", display_name: "Robert", role: "user", kind: "human" },
];

function setup(): { input: HTMLTextAreaElement; picker: MentionPicker } {
  const input = document.createElement("textarea");
  document.body.append(input);
  const picker = new MentionPicker(input, () => ({ members, meId: 1, broadcast: false }));
  document.body.append(picker.el);
  return { input, picker };
}

function type(input: HTMLTextAreaElement, picker: MentionPicker, text: string): void {
  input.value = text;
  input.setSelectionRange(text.length, text.length);
  picker.update();
}

const key = (k: string) => new KeyboardEvent("keydown", { key: k, cancelable: true });

describe("the @ autocomplete", () => {
  it("opens on @, moves with the arrows and picks with Enter", () => {
    const { input, picker } = setup();
    type(input, picker, "hi @bo");
    expect(picker.open).toBe(true);
    expect([...picker.el.querySelectorAll("li")].map((li) => li.dataset.username)).toEqual(["bob", "bobby"]);
    expect(picker.handleKey(key("ArrowDown"))).toBe(true);
    expect(picker.el.querySelector("[aria-selected=true]")?.getAttribute("data-username")).toBe("bobby");
    const enter = key("Enter");
    expect(picker.handleKey(enter)).toBe(true);
    expect(enter.defaultPrevented).toBe(true); // the composer does not send
    expect(input.value).toBe("hi @bobby ");
    expect(picker.open).toBe(false);
  });

  it("picks with Tab, offers the assistant, and Escape closes it for that @", () => {
    const { input, picker } = setup();
    type(input, picker, "@assi");
    picker.handleKey(key("Tab"));
    expect(input.value).toBe("@assistant ");
    type(input, picker, "@b");
    expect(picker.handleKey(key("Escape"))).toBe(true);
    expect(picker.open).toBe(false);
    type(input, picker, "@bo"); // still the same @: stays closed
    expect(picker.open).toBe(false);
    expect(picker.handleKey(key("Enter"))).toBe(false); // Enter is the composer's again
  });

  it("matches the @name being typed again when the members load", () => {
    const input = document.createElement("textarea");
    document.body.append(input);
    input.focus();
    let loaded: User[] = [];
    const picker = new MentionPicker(input, () => ({ members: loaded, meId: 1, broadcast: false }));
    const options = () => [...picker.el.querySelectorAll("li")].map((li) => li.dataset.username);
    type(input, picker, "@");
    expect(options()).toEqual(["assistant"]);
    type(input, picker, "@bo"); // nobody matches yet: closed, no stale option left behind
    expect(picker.open).toBe(false);
    expect(options()).toEqual([]);
    loaded = members;
    picker.refresh();
    expect(picker.open).toBe(true);
    expect(options()).toEqual(["bob", "bobby"]);
    input.blur();
    type(input, picker, "hi");
    picker.refresh(); // no @name, or no focus: stays closed
    expect(picker.open).toBe(false);
  });
});
