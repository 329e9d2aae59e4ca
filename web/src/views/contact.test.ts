// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { ChatClient } from "../client";
import { filterQuery, Inbox, matches } from "../store/inbox";
import { flush } from "../testing";
import type { Ack, Contact, Conversation, Label } from "../types";
import type { App } from "./app";
import { ContactPanel, formatAttributes, parseAttributes } from "./contact";

const ME = { id: 1, username: "me", display_name: "Me", role: "staff" as const, kind: "human" };
const VIP: Label = { id: 7, name: "VIP", color: "#1f883d" };
const BILLING: Label = { id: 8, name: "Billing", color: "#0969da" };

const contact = (extra: Partial<Contact> = {}): Contact => ({
  id: 5, name: "Ann", name_edited: false, phone: "+4917055500001", email: null, notes: "", attributes: { plan: "pro" },
  identities: [{ kind: "wa_id", value: "4917055500001" }], labels: [VIP], created_at: "", updated_at: "", ...extra,
});

const conversation = (extra: Partial<Conversation> = {}): Conversation => ({
  room_id: 3, account_id: 1, business_phone: "+1 555", contact: { id: 5, wa_id: "4917055500001", name: "Ann", bsuid: null },
  labels: [VIP], status: "open", ai_enabled: true, mode: "ai", assignee: null, unread: 0, last_message: null, last_inbound_at: null,
  window_open: true, updated_at: "2026-11-30T10:00:00Z", ...extra,
});

/** A contact panel over a real ChatClient, its REST calls answered by `server` and recorded. */
function panel(server: { contact: Contact }) {
  const calls: { method: string; path: string; body?: any }[] = [];
  const call = async <T,>(method: string, path: string, body?: unknown): Promise<T> => {
    calls.push({ method, path, body });
    if (path === "/api/v1/labels") return { labels: [VIP, BILLING] } as T;
    if (path.endsWith("/conversations")) return { conversations: [conversation(), conversation({ room_id: 9, business_phone: "+1 777", status: "closed" })] } as T;
    if (method === "PATCH") server.contact = { ...server.contact, ...(body as object), name_edited: "name" in (body as object) || server.contact.name_edited };
    if (method === "PUT") server.contact = { ...server.contact, labels: [...server.contact.labels, BILLING] };
    return { contact: server.contact } as T;
  };
  const client = new ChatClient({ me: () => ME, emit: async <T,>() => ({ ok: true }) as Ack<T>, connected: () => true, isVisible: () => true, call });
  const notices: string[] = [];
  const app = { client, me: ME, api: { call }, notice: (t: string) => notices.push(t) } as unknown as App;
  const p = new ContactPanel(app, conversation());
  client.subscribe((c) => { if (c.kind === "labels" || (c.kind === "contact" && c.contactId === p.contactId)) p.refresh(); });
  document.body.replaceChildren(p.el);
  return { p, calls, client, notices };
}

const q = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T>(`[data-testid=${sel}]`)!;
const all = (sel: string) => [...document.querySelectorAll<HTMLElement>(`[data-testid=${sel}]`)];

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await flush();
}

describe("the contact panel", () => {
  it("shows the contact, their labels and their conversations on every number", async () => {
    panel({ contact: contact() });
    await settle();
    expect(q<HTMLInputElement>("contact-name").value).toBe("Ann");
    expect(q("contact-phone").textContent).toBe("+4917055500001");
    expect(q<HTMLTextAreaElement>("contact-attributes").value).toBe("plan=pro");
    expect(all("label-chip").map((c) => c.textContent)).toEqual(["VIP×"]);
    // only labels not on the contact are offered
    expect([...q<HTMLSelectElement>("contact-label-add").options].map((o) => o.text)).toEqual(["Add a label…", "Billing"]);
    expect(all("contact-conversation").map((a) => a.getAttribute("href"))).toEqual(["#/room/3", "#/room/9"]);
    expect(q("contact-conversation").getAttribute("aria-current")).toBe("page");
  });

  it("saves only the fields changed, and a live update does not overwrite what is being typed", async () => {
    const { calls, client } = panel({ contact: contact() });
    await settle();
    const name = q<HTMLInputElement>("contact-name");
    name.value = "Ann Lee";
    name.dispatchEvent(new Event("input"));
    client.onContact(contact({ notes: "from a colleague" }));
    expect(name.value).toBe("Ann Lee");
    q<HTMLFormElement>("contact-save").closest("form")!.requestSubmit();
    await settle();
    const patch = calls.find((c) => c.method === "PATCH")!;
    expect(patch.path).toBe("/api/v1/contacts/5");
    expect(patch.body).toEqual({ name: "Ann Lee", notes: "" });
    expect(q("contact-status").textContent).toBe("Saved.");
    expect(client.contacts.get(5)?.name_edited).toBe(true);
  });

  it("refuses attribute lines that are not name=value without calling the server", async () => {
    const { calls } = panel({ contact: contact() });
    await settle();
    q<HTMLTextAreaElement>("contact-attributes").value = "plan=pro\njust words";
    q<HTMLFormElement>("contact-save").closest("form")!.requestSubmit();
    await settle();
    expect(calls.some((c) => c.method === "PATCH")).toBe(false);
    expect(q("contact-status").textContent).toContain("name=value");
  });

  it("puts a label on from the list and takes one off with its chip", async () => {
    const { calls } = panel({ contact: contact() });
    await settle();
    const add = q<HTMLSelectElement>("contact-label-add");
    add.value = "8";
    add.dispatchEvent(new Event("change"));
    await settle();
    expect(calls.some((c) => c.method === "PUT" && c.path === "/api/v1/contacts/5/labels/8")).toBe(true);
    expect(all("label-chip").map((c) => c.dataset.label)).toEqual(["7", "8"]);
    q<HTMLButtonElement>("label-remove").click();
    await settle();
    expect(calls.some((c) => c.method === "DELETE" && c.path === "/api/v1/contacts/5/labels/7")).toBe(true);
  });

  it("drops a deleted label and recolours a changed one", async () => {
    const { client } = panel({ contact: contact({ labels: [VIP, BILLING] }) });
    await settle();
    client.onLabel({ ...BILLING, color: "#cf222e" });
    expect(all("label-chip")[1].style.getPropertyValue("--label")).toBe("#cf222e");
    client.onLabelDeleted(VIP.id);
    expect(all("label-chip").map((c) => c.dataset.label)).toEqual(["8"]);
  });
});

describe("attributes as text", () => {
  it("reads numbers, true/false/null and text, and writes them back the same", () => {
    const attrs = parseAttributes("plan = pro\nseats=3\nvip=true\nref=null\ncode=007x\n\n");
    expect(attrs).toEqual({ plan: "pro", seats: 3, vip: true, ref: null, code: "007x" });
    expect(parseAttributes(formatAttributes(attrs))).toEqual(attrs);
    expect(() => parseAttributes("=x")).toThrow();
  });
});

describe("inbox filters", () => {
  it("ask the server for label and search, and keep live updates to what they match", () => {
    expect(filterQuery({ label: 7, q: "  parcel ", ai: false })).toBe("?ai=false&label=7&q=parcel");
    const labelled = conversation();
    const other = conversation({ room_id: 4, labels: [] });
    expect(matches(labelled, { label: 7 }, 1)).toBe(true);
    expect(matches(other, { label: 7 }, 1)).toBe(false);
    // with a search, only the rooms the server found show, whatever arrives live
    expect(matches(other, { q: "parcel", found: new Set([3]) }, 1)).toBe(false);
    expect(matches(labelled, { q: "parcel", found: new Set([3]) }, 1)).toBe(true);
  });

  it("relabel and dropLabel update the chips of every conversation", () => {
    const inbox = new Inbox();
    inbox.setAll([conversation(), conversation({ room_id: 4, labels: [VIP, BILLING] })]);
    inbox.relabel({ ...VIP, name: "Gold" });
    expect(inbox.get(4)?.labels?.map((l) => l.name)).toEqual(["Gold", "Billing"]);
    inbox.dropLabel(VIP.id);
    expect(inbox.get(3)?.labels).toEqual([]);
  });
});
