// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { emojify, formatBody, safeHref } from "./format";

function render(body: string, opts = {}): HTMLDivElement {
  const div = document.createElement("div");
  div.append(...formatBody(body, opts));
  return div;
}

// Each entry must render inert: no element outside the renderer's table, no event handler
// attribute, no href other than an absolute http(s)/mailto URL.
const XSS = [
  "<script>window.__xss = 1</script>",
  "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
  '<img src=x onerror="window.__xss = 1">',
  '<svg onload="window.__xss=1"></svg>',
  '<iframe src="javascript:window.__xss=1"></iframe>',
  '<a href="javascript:window.__xss=1">click</a>',
  "[click](javascript:window.__xss=1)",
  "[click](JaVaScRiPt:window.__xss=1)",
  "[click](java\tscript:window.__xss=1)",
  "[click](&#106;avascript:window.__xss=1)",
  "[click](%6A%61vascript:alert(1))",
  "[click](vbscript:msgbox(1))",
  "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
  "[click](//evil.example/phish)",
  // markdown-it itself lets these through (data:image links, other schemes): format.ts refuses them
  "[click](data:image/png;base64,iVBORw0KGgo=)",
  "[click](ftp://evil.example/x)",
  "[click](intent://evil#Intent;scheme=javascript;end)",
  "<tel:+15550100>",
  "[click](/relative/path)",
  "![img](javascript:window.__xss=1)",
  "![img](https://evil.example/track.png)",
  "<javascript:window.__xss=1>",
  "<data:text/html,<script>alert(1)</script>>",
  "javascript:window.__xss=1",
  "data:text/html,<script>alert(1)</script>",
  "[x](https://ok.example \"title\" onmouseover=alert(1))",
  "```html\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>\n```",
  "`<img src=x onerror=alert(1)>`",
  "> <b onclick=alert(1)>quoted</b>",
  "- <style>body{display:none}</style>",
  "[\u202ehttps://good.example](javascript:alert(1))",
  "[a](java\u0000script:alert(1))",
  "[a](\u200bjavascript:alert(1))",
  "<https://ok.example/\"onmouseover=\"alert(1)>",
  "**<u>bold</u>** _<i>it</i>_",
];

const ALLOWED = new Set(["P", "BR", "STRONG", "EM", "S", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "SPAN"]);

function assertInert(div: HTMLElement, payload: string): void {
  for (const el of div.querySelectorAll("*")) {
    expect(ALLOWED.has(el.tagName), `${el.tagName} from ${payload}`).toBe(true);
    for (const attr of el.getAttributeNames()) {
      expect(["href", "target", "rel", "class", "start"], `${attr} from ${payload}`).toContain(attr);
    }
  }
  for (const a of div.querySelectorAll("a")) {
    expect(a.getAttribute("href")).toMatch(/^(https?:\/\/|mailto:)/);
    expect(a.getAttribute("rel")).toBe("noopener noreferrer");
    expect(a.getAttribute("target")).toBe("_blank");
  }
}

describe("formatBody safety", () => {
  it("renders every entry of the XSS corpus inert", () => {
    for (const payload of XSS) assertInert(render(payload), payload);
    expect((window as unknown as { __xss?: number }).__xss).toBeUndefined();
  });

  it("shows raw HTML as its text", () => {
    const div = render("<b>x</b> and <script>y</script>");
    expect(div.textContent).toBe("<b>x</b> and <script>y</script>");
    expect(div.querySelector("b, script")).toBeNull();
  });

  it("keeps HTML inside code blocks and inline code as text", () => {
    const div = render("```\n<div><img src=x onerror=alert(1)></div>\n```\nand `<b>b</b>`");
    expect(div.querySelector("pre code")?.textContent).toBe("<div><img src=x onerror=alert(1)></div>");
    expect(div.querySelectorAll("code")[1].textContent).toBe("<b>b</b>");
    expect(div.querySelector("img, div, b")).toBeNull();
  });

  it("refuses links that are not absolute http, https or mailto, keeping their text", () => {
    const div = render("[click](javascript:alert(1)) [rel](/x) [data](data:text/html,x)");
    expect(div.querySelector("a")).toBeNull();
    expect(div.textContent).toContain("click");
  });

  it("checks hrefs itself", () => {
    expect(safeHref("https://example.com/a?b=1")).toBe("https://example.com/a?b=1");
    expect(safeHref("mailto:a@example.com")).toBe("mailto:a@example.com");
    for (const bad of ["javascript:alert(1)", " JAVASCRIPT:alert(1)", "data:text/html,x", "vbscript:x", "/x", "//x.example",
      "java\nscript:alert(1)", "\u200bhttps://x.example", "file:///etc/passwd", "", null]) {
      expect(safeHref(bad), String(bad)).toBeNull();
    }
  });
});

describe("formatBody formatting", () => {
  it("renders bold, italic, strikethrough and inline code", () => {
    const div = render("**bold** *it* _also_ ~~gone~~ `code`");
    expect(div.querySelector("strong")?.textContent).toBe("bold");
    expect([...div.querySelectorAll("em")].map((e) => e.textContent)).toEqual(["it", "also"]);
    expect(div.querySelector("s")?.textContent).toBe("gone");
    expect(div.querySelector("code")?.textContent).toBe("code");
  });

  it("renders quotes, lists and fenced code blocks", () => {
    const div = render("> quoted\n\n- one\n- two\n\n3. three\n4. four\n\n```js\nlet x = 1;\n```");
    expect(div.querySelector("blockquote")?.textContent).toBe("quoted");
    expect([...div.querySelectorAll("ul li")].map((e) => e.textContent)).toEqual(["one", "two"]);
    expect(div.querySelector("ol")?.getAttribute("start")).toBe("3");
    expect(div.querySelector("pre.code code")?.textContent).toBe("let x = 1;");
  });

  it("turns URLs into safe links and keeps line breaks", () => {
    const div = render("see https://example.com/path?q=1 and mailto:a@example.com\nnext line");
    const links = [...div.querySelectorAll("a")];
    expect(links.map((a) => a.getAttribute("href"))).toEqual(["https://example.com/path?q=1", "mailto:a@example.com"]);
    expect(div.querySelector("br")).not.toBeNull();
  });

  it("leaves headings and bare domains as text, and never loads images", () => {
    const div = render("# not a heading\n\nexample.com www.example.org ![alt](https://x.example/i.png)");
    expect(div.querySelector("h1, img")).toBeNull();
    // an image is only a link to it
    expect([...div.querySelectorAll("a")].map((a) => a.getAttribute("href"))).toEqual(["https://x.example/i.png"]);
    expect(div.textContent).toContain("# not a heading");
  });

  it("replaces known emoji shortcodes outside code only", () => {
    expect(emojify(":smile: :+1: :nope:")).toBe("😄 👍 :nope:");
    const div = render(":tada: `:tada:`");
    expect(div.textContent).toBe("🎉 :tada:");
  });

  it("marks mentions, the reader's own more strongly, but not in code or e-mail addresses", () => {
    const div = render("hi @Bob and @alice, mail x@bob.example `@bob`", { me: "bob" });
    const spans = [...div.querySelectorAll("span.mention")];
    expect(spans.map((s) => [s.textContent, s.classList.contains("me")])).toEqual([["@Bob", true], ["@alice", false]]);
    const all = render("@room meeting", { me: "bob", mentionAll: true });
    expect(all.querySelector("span.mention.me")?.textContent).toBe("@room");
  });
});
