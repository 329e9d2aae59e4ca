// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { msg } from "../testing";
import { type Item, KeyedList } from "../dom";
import { type ItemContext, messageItem, pendingItem } from "./messages";

const XSS = [
  "<script>window.__xss = 1</script>",
  '<img src=x onerror="window.__xss = 1">',
  '<a href="javascript:window.__xss=1">click</a>',
  "[click](javascript:window.__xss=1)",
  "&lt;b&gt;not bold&lt;/b&gt;",
];

function ctx(extra: Partial<ItemContext> = {}): ItemContext {
  const none = () => undefined;
  return {
    meId: 1, status: none, lookup: none, editingId: null, confirmDeleteId: null,
    onEdit: none, onSaveEdit: none, onCancel: none, onDelete: none, onConfirmDelete: none, onRetry: none, onDiscard: none, ...extra,
  };
}

describe("message items", () => {
  it("render bodies and author names without markup from the text", () => {
    for (const payload of XSS) {
      const li = messageItem(msg(1, 1, { body: payload, author_name: payload, author_id: 2 }), ctx());
      // Markdown is parsed, but none of these is formatting: each shows as typed
      expect(li.querySelector("[data-testid=message-body]")?.textContent).toBe(payload);
      expect(li.querySelector(".author")?.textContent).toBe(payload);
      expect(li.querySelectorAll("script, img, a, b:not(.author)").length).toBe(0);
    }
  });

  it("say that a message was typed on the linked phone, and offer no edit for it", () => {
    const li = messageItem(msg(9, 5, { author_id: null, author_name: "front desk", meta: { from_phone: true } }), ctx());
    expect(li.querySelector(".author")?.textContent).toBe("front desk");
    expect(li.querySelector("[data-testid=from-phone]")?.textContent).toBe(" · sent from the phone");
    expect(li.querySelector("[data-testid=edit]")).toBeNull();
    expect(messageItem(msg(10, 6, { author_id: 2 }), ctx()).querySelector("[data-testid=from-phone]")).toBeNull();
  });

  it("carry data-id and data-seq, and offer edit and delete only on own messages", () => {
    const own = messageItem(msg(7, 3, { author_id: 1 }), ctx());
    expect(own.dataset.id).toBe("7");
    expect(own.dataset.seq).toBe("3");
    expect(own.querySelector("[data-testid=edit]")).not.toBeNull();
    const other = messageItem(msg(8, 4, { author_id: 2 }), ctx());
    expect(other.querySelector("[data-testid=edit]")).toBeNull();
    const deleted = messageItem(msg(9, 5, { author_id: 1, body: "", deleted_at: "x" }), ctx());
    expect(deleted.querySelector("[data-testid=delete]")).toBeNull();
    expect(deleted.textContent).toContain("message deleted");
  });

  it("show the WhatsApp delivery tick", () => {
    const li = messageItem(msg(7, 3), ctx({ status: () => "read" }));
    const tick = li.querySelector("[data-testid=wa-status]");
    expect(tick?.getAttribute("data-status")).toBe("read");
    expect(tick?.textContent?.trim()).toBe("✓✓");
  });

  it("show a pending send's state, with retry and discard once it failed", () => {
    const p = { client_id: "c", room_id: 1, body: "<b>hi</b>", reply_to: null, created_at: "", state: "failed" as const, error: "too large" };
    const li = pendingItem(p, ctx());
    expect(li.querySelector("[data-testid=pending-body]")?.textContent).toBe("<b>hi</b>");
    expect(li.textContent).toContain("Not sent: too large");
    expect(li.querySelector("[data-testid=retry]")).not.toBeNull();
  });
});

describe("KeyedList", () => {
  const item = (key: string, sig: string): Item => ({ key, sig, make: () => Object.assign(document.createElement("li"), { textContent: `${key}:${sig}` }) });

  it("keeps elements whose signature did not change, replaces the others, and follows the order", () => {
    const root = document.createElement("ul");
    const list = new KeyedList(root);
    list.render([item("a", "1"), item("b", "1"), item("c", "1")]);
    const [a, b] = [...root.children];
    list.render([item("x", "1"), item("a", "1"), item("b", "2")]);
    expect([...root.children].map((e) => e.textContent)).toEqual(["x:1", "a:1", "b:2"]);
    expect(root.children[1]).toBe(a);
    expect(root.children[2]).not.toBe(b);
    list.render([item("b", "2"), item("a", "1")]);
    expect([...root.children].map((e) => e.textContent)).toEqual(["b:2", "a:1"]);
  });
});
