// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { ChatClient } from "../client";
import { flush } from "../testing";
import type { Ack, Contact, Label, User } from "../types";
import type { App } from "./app";
import { parseRoute } from "./app";
import { ContactPage, contactName, contactsPath, ContactsView } from "./contacts";

const STAFF: User = { id: 1, username: "sam", display_name: "Sam", role: "staff", kind: "human" };
const VIP: Label = { id: 7, name: "VIP", color: "#1f883d" };
const HOSTILE = "<script>window.__xss=1</script><img src=x onerror=alert(1)>";

const contact = (id: number, extra: Partial<Contact> = {}): Contact => ({
  id, name: `Person ${id}`, name_edited: false, phone: `+49170555000${id}`, email: null, notes: "", attributes: {},
  identities: [], labels: [], created_at: "", updated_at: "", ...extra,
});

type Answer = (method: string, path: string, body?: unknown) => unknown;

/** A view over a real ChatClient whose REST calls are answered by `answer` and recorded. */
function mount<V extends { el: HTMLElement; update: (c: never) => void }>(answer: Answer, make: (app: App) => V) {
  const calls: { method: string; path: string; body?: unknown }[] = [];
  const call = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
    calls.push({ method, path, body });
    if (path === "/api/v1/labels") return { labels: [VIP] } as T;
    const r = answer(method, path, body);
    if (r instanceof Error) throw r;
    return r as T;
  };
  const client = new ChatClient({ me: () => STAFF, emit: async <T,>() => ({ ok: true }) as Ack<T>, connected: () => true, isVisible: () => false, call });
  const app = { client, me: STAFF, api: { call }, notice: () => undefined } as unknown as App;
  const view = make(app);
  client.subscribe((c) => view.update(c as never));
  document.body.replaceChildren(view.el);
  return { view, calls, client };
}

const q = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(`[data-testid=${sel}]`)!;
const all = (sel: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid=${sel}]`)];

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flush();
}

describe("the contacts page", () => {
  it("asks for the filters set, the page size and the cursor of the page before", () => {
    expect(contactsPath({})).toBe("/api/v1/contacts?limit=50");
    expect(contactsPath({ q: "  0001 ", label: 7 }, 41)).toBe("/api/v1/contacts?q=0001&label=7&cursor=41&limit=50");
    expect(contactsPath({ q: "   " })).toBe("/api/v1/contacts?limit=50");
    expect(contactName(contact(3, { name: " " }))).toBe("+491705550003");
    expect(contactName(contact(3, { name: "", phone: null }))).toBe("Contact 3");
  });

  it("lists each contact with its number and labels, each opening the contact", async () => {
    mount(() => ({ contacts: [contact(5, { labels: [VIP], email: "p5@example.com" }), contact(4)], next_cursor: null }), (app) => new ContactsView(app));
    await settle();
    const rows = all("contact-row");
    expect(rows.map((r) => r.dataset.contact)).toEqual(["5", "4"]);
    expect([...rows[0].children].map((c) => c.textContent)).toEqual(["Person 5", "+491705550005", "p5@example.com", "VIP"]);
    expect(all("contact-open").map((a) => a.getAttribute("href"))).toEqual(["#/contacts/5", "#/contacts/4"]);
    expect(q("contacts-more").hidden).toBe(true);
  });

  it("searches on the server by what was typed and shows only what it found", async () => {
    const { calls } = mount((_m, path) => path.includes("q=0004")
      ? { contacts: [contact(4)], next_cursor: null }
      : { contacts: [contact(5), contact(4)], next_cursor: null }, (app) => new ContactsView(app));
    await settle();
    q<HTMLInputElement>("contacts-search").value = "0004";
    q("contacts-search").closest("form")!.requestSubmit();
    await settle();
    expect(calls.map((c) => c.path)).toContain("/api/v1/contacts?q=0004&limit=50");
    expect(all("contact-row").map((r) => r.dataset.contact)).toEqual(["4"]);
  });

  it("says so when nothing matches, and shows the server's refusal", async () => {
    let fail = false;
    mount(() => fail ? new ApiError(404, "not_found", "label not found") : { contacts: [], next_cursor: null }, (app) => new ContactsView(app));
    await settle();
    expect(q("contacts-status").textContent).toBe("No contacts yet.");
    fail = true;
    const select = q<HTMLSelectElement>("contacts-label");
    expect([...select.options].map((o) => o.text)).toEqual(["any", "VIP"]);
    select.value = "7";
    select.dispatchEvent(new Event("change"));
    await settle();
    expect(q("contacts-status").textContent).toBe("label not found");
  });

  it("pages on with the cursor, appending the next page", async () => {
    const { calls } = mount((_m, path) => path.includes("cursor=4")
      ? { contacts: [contact(3)], next_cursor: null }
      : { contacts: [contact(5), contact(4)], next_cursor: 4 }, (app) => new ContactsView(app));
    await settle();
    expect(q("contacts-more").hidden).toBe(false);
    q<HTMLButtonElement>("contacts-more").click();
    await settle();
    expect(calls.some((c) => c.path === "/api/v1/contacts?cursor=4&limit=50")).toBe(true);
    expect(all("contact-row").map((r) => r.dataset.contact)).toEqual(["5", "4", "3"]);
    expect(q("contacts-more").hidden).toBe(true);
  });

  it("keeps rows live: an edited contact, a renamed or deleted label", async () => {
    const { client } = mount(() => ({ contacts: [contact(5, { labels: [VIP] })], next_cursor: null }), (app) => new ContactsView(app));
    await settle();
    client.onContact(contact(5, { name: "Ann Lee", labels: [VIP] }));
    expect(q("contact-open").textContent).toBe("Ann Lee");
    client.onLabel({ ...VIP, name: "Gold" });
    expect(q("label-chip").textContent).toBe("Gold");
    client.onLabelDeleted(VIP.id);
    expect(all("label-chip")).toEqual([]);
  });

  it("shows hostile names, emails and label names as text", async () => {
    mount(() => ({ contacts: [contact(5, { name: HOSTILE, email: HOSTILE, labels: [{ id: 9, name: HOSTILE, color: "red;x" }] })], next_cursor: null }),
      (app) => new ContactsView(app));
    await settle();
    expect(q("contact-open").textContent).toBe(HOSTILE);
    expect(q("label-chip").textContent).toBe(HOSTILE);
    expect(q("label-chip").style.getPropertyValue("--label")).toBe(""); // not a colour: no style
    expect(document.querySelectorAll("script, img, [onerror]").length).toBe(0);
  });
});

describe("one contact by itself", () => {
  it("is routed from #/contacts/<id>, next to #/contacts and #/labels", () => {
    expect(parseRoute("#/contacts")).toEqual({ view: "contacts" });
    expect(parseRoute("#/contacts/12")).toEqual({ view: "contact", contactId: 12 });
    expect(parseRoute("#/labels")).toEqual({ view: "labels" });
    expect(parseRoute("#/contacts/x")).toEqual({ view: "home" });
  });

  it("shows the contact panel titled with the name, as text, and their conversations", async () => {
    const { calls } = mount((_m, path) => path.endsWith("/conversations") ? { conversations: [] } : { contact: contact(5, { name: HOSTILE }) },
      (app) => new ContactPage(app, 5));
    await settle();
    expect(calls.map((c) => c.path)).toEqual(expect.arrayContaining(["/api/v1/contacts/5", "/api/v1/contacts/5/conversations"]));
    expect(q("contact-title").textContent).toBe(HOSTILE);
    expect(q<HTMLInputElement>("contact-name").value).toBe(HOSTILE);
    expect(q("contacts-back").getAttribute("href")).toBe("#/contacts");
    expect(document.querySelectorAll("script, img").length).toBe(0);
  });
});
