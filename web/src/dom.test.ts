// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { h, KeyedList, morph } from "./dom";

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
