// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { h, KeyedList, morph, on } from "./dom";

describe("morph", () => {
  it("makes the old element look like the new one, keeping it and its children of the same kind", () => {
    const old = h("a", { href: "#/room/1", class: "active", title: "x" }, h("span", { class: "name" }, "general"), h("small", {}, "join"));
    const name = old.querySelector(".name")!;
    const fresh = h("a", { href: "#/room/1", class: "has-unread" }, h("span", { class: "name" }, "general!"), h("span", { class: "badge" }, "3"));
    const wantHtml = fresh.outerHTML;
    expect(morph(old, fresh)).toBe(old);
    expect(old.outerHTML).toBe(wantHtml);
    expect(old.querySelector(".name")).toBe(name); // the same node, its text updated
    expect(old.hasAttribute("title")).toBe(false);
  });

  it("adds and removes children to match, and replaces an element of another tag", () => {
    const old = h("li", {}, h("b", {}, "a"), "text", h("i", {}, "gone"));
    const want = h("li", {}, h("span", {}, "a"), h("b", {}, "b"), h("em", {}, "new"));
    const wantHtml = want.outerHTML;
    morph(old, want);
    expect(old.outerHTML).toBe(wantHtml);
    const p = h("p", {}, "x");
    document.body.replaceChildren(p);
    const div = h("div", {}, "y");
    expect(morph(p, div)).toBe(div);
    expect(document.body.firstChild).toBe(div);
  });
});

describe("morph and listeners", () => {
  it("hands the kept element the new element's listeners, and a type the new one lacks goes quiet", () => {
    const calls: string[] = [];
    const old = h("li", {}, h("button", { testid: "edit", onclick: () => calls.push("old edit") }, "Edit"));
    on(old, "keydown", () => calls.push("old key"));
    const button = old.querySelector("button")!;
    morph(old, h("li", {}, h("button", { testid: "edit", onclick: () => calls.push("new edit") }, "Edit")));
    expect(old.querySelector("button")).toBe(button);
    button.click();
    old.dispatchEvent(new KeyboardEvent("keydown"));
    expect(calls).toEqual(["new edit"]);
    on(old, "keydown", () => calls.push("key again"));
    old.dispatchEvent(new KeyboardEvent("keydown"));
    expect(calls).toEqual(["new edit", "key again"]);
  });

  it("never turns a button into another one: children match by tag and data attributes, in order", () => {
    const clicked: string[] = [];
    const chip = (emoji: string) => h("button", { testid: "reaction", "data-emoji": emoji, onclick: () => clicked.push(emoji) }, emoji);
    const old = h("div", {}, chip("👍"), chip("🎉"), h("button", { testid: "edit", onclick: () => clicked.push("edit") }, "Edit"));
    const [, party, edit] = [...old.children] as HTMLElement[];
    // 👍 went away and a reaction bar grew a ❤️: the 🎉 and Edit buttons are the same elements
    morph(old, h("div", {}, chip("🎉"), chip("❤️"), h("button", { testid: "edit", onclick: () => clicked.push("edit") }, "Edit")));
    expect([...old.children].map((e) => (e as HTMLElement).dataset.emoji ?? e.textContent)).toEqual(["🎉", "❤️", "Edit"]);
    expect(old.children[0]).toBe(party);
    expect(old.children[2]).toBe(edit);
    party.click();
    edit.click();
    (old.children[1] as HTMLElement).click();
    expect(clicked).toEqual(["🎉", "edit", "❤️"]);
  });

  it("keeps what the user typed and the focus of a field that stays", () => {
    const old = h("form", {}, h("textarea", { testid: "edit-input" }));
    document.body.replaceChildren(old);
    const box = old.querySelector("textarea")!;
    box.value = "half typed";
    box.focus();
    morph(old, h("form", { class: "edit" }, h("textarea", { testid: "edit-input" })));
    expect(old.querySelector("textarea")).toBe(box);
    expect(box.value).toBe("half typed");
    expect(document.activeElement).toBe(box);
  });
});

describe("a keyed list", () => {
  it("replaces an item whose look changed, or updates it in place when the item asks", () => {
    const root = h("ul");
    const list = new KeyedList(root);
    const item = (key: string, text: string, inPlace = false) => ({ key, sig: text, make: () => h("li", {}, text), inPlace });
    list.render([item("a", "one"), item("b", "two", true)]);
    const [a, b] = [...root.children];
    list.render([item("a", "one!"), item("b", "two!", true)]);
    expect([...root.children].map((e) => e.textContent)).toEqual(["one!", "two!"]);
    expect(root.children[0]).not.toBe(a);
    expect(root.children[1]).toBe(b);
    list.render([item("b", "two?", true), item("a", "one!")]); // moved and changed
    expect([...root.children].map((e) => e.textContent)).toEqual(["two?", "one!"]);
    expect(root.children[0]).toBe(b);
  });
});
